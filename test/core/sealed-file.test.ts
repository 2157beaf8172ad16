import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, encode } from '../../src/core/codec.js';
import { IntegrityError } from '../../src/core/errors.js';
import { type SealedFileKind, openFile, sealFile } from '../../src/core/sealed-file.js';
import { flipBit, hexDump, lowEntropyText, seededRandom } from './fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x11);
const random = (n: number): Uint8Array => randomBytes(n);
const KINDS: SealedFileKind[] = ['index', 'snapshot', 'deleted'];

/** Opens a sealed file by docs/format.md alone: returns the codec byte and the body. */
function openBySpec(dataKey: Uint8Array, kind: string, file: Buffer): { codec: number; body: Buffer } {
  expect(file.subarray(0, 4).toString('latin1')).toBe('CRNF');
  expect(Array.from(file.subarray(4, 8))).toEqual([1, 0, 0, 0]);
  const key = Buffer.from(hkdfSync('sha256', dataKey, file.subarray(8, 24), 'cairn file v1', 32));
  const sealed = file.subarray(24);
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAAD(Buffer.from(kind));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const plain = Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  return { codec: plain[0]!, body: plain.subarray(1) };
}

describe('sealFile / openFile', () => {
  it.each(KINDS)('round-trips any body of kind %s, raw or compressed', async (kind) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 2048 }), fc.nat({ max: 20_000 }).map((n) => lowEntropyText(n))), fc.boolean(), async (data, compress) => {
        const body = await encode(data, { codec: compress ? 'zstd' : 'none', level: 3 });
        const file = sealFile(DATA_KEY, kind, body, random);
        expect(Buffer.compare(await openFile(DATA_KEY, kind, file), data)).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('lays out "CRNF", version 1, three zero bytes, a 16-byte salt, then nonce ‖ GCM(codec ‖ body) ‖ tag', async () => {
    const data = lowEntropyText(5000);
    const body = await encode(data, { codec: 'zstd', level: 3 });
    const file = sealFile(DATA_KEY, 'snapshot', body, random);
    expect(file).toHaveLength(24 + 12 + 1 + body.bytes.length + 16);
    const opened = openBySpec(DATA_KEY, 'snapshot', file);
    expect(opened.codec).toBe(Codec.zstd);
    expect(opened.body.equals(Buffer.from(body.bytes))).toBe(true);
  });

  it('matches the golden file (format v1)', async () => {
    const file = sealFile(DATA_KEY, 'index', { codec: Codec.none, bytes: Buffer.from('golden body') }, seededRandom(7));
    await expect(hexDump(file)).toMatchFileSnapshot('./__golden__/sealed-file.hex');
  });

  it('uses a fresh salt per file', () => {
    const body = { codec: Codec.none, bytes: Buffer.from('x') };
    const a = sealFile(DATA_KEY, 'index', body, random);
    const b = sealFile(DATA_KEY, 'index', body, random);
    expect(a.subarray(8, 24).equals(b.subarray(8, 24))).toBe(false);
  });

  it('refuses a file of another kind (the kind is bound as AAD)', async () => {
    const file = sealFile(DATA_KEY, 'snapshot', { codec: Codec.none, bytes: Buffer.from('{}') }, random);
    await expect(openFile(DATA_KEY, 'index', file)).rejects.toBeInstanceOf(IntegrityError);
    await expect(openFile(DATA_KEY, 'deleted', file)).rejects.toBeInstanceOf(IntegrityError);
  });

  it('refuses another data key', async () => {
    const file = sealFile(DATA_KEY, 'index', { codec: Codec.none, bytes: Buffer.from('{}') }, random);
    await expect(openFile(new Uint8Array(32).fill(0x12), 'index', file)).rejects.toBeInstanceOf(IntegrityError);
  });

  it('refuses a file with any one bit flipped in its magic, version, salt or sealed part', async () => {
    const file = sealFile(DATA_KEY, 'index', { codec: Codec.none, bytes: Buffer.from('some index bytes') }, random);
    for (let bit = 0; bit < file.length * 8; bit++) {
      if (bit >= 40 && bit < 64) continue; // bytes 5–7 are reserved, written as zero and not read
      await expect(openFile(DATA_KEY, 'index', flipBit(file, bit))).rejects.toBeInstanceOf(IntegrityError);
    }
  });

  it('refuses every truncation', async () => {
    const file = sealFile(DATA_KEY, 'index', { codec: Codec.none, bytes: Buffer.from('body') }, random);
    for (let n = 0; n < file.length; n++) await expect(openFile(DATA_KEY, 'index', file.subarray(0, n))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('refuses an unknown codec byte inside an authentic file', async () => {
    const file = sealFile(DATA_KEY, 'index', { codec: 9 as typeof Codec.none, bytes: Buffer.from('body') }, random);
    await expect(openFile(DATA_KEY, 'index', file)).rejects.toBeInstanceOf(IntegrityError);
  });
});
