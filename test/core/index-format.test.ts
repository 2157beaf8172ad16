import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/core/errors.js';
import type { IndexId, PackId } from '../../src/core/ids.js';
import { type IndexFileContent, decodeIndexFile, encodeIndexFile } from '../../src/core/index-format.js';
import { BlobType, compactEntries } from '../../src/core/pack-format.js';
import { hexDump } from './fixtures.js';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const u32 = fc.nat({ max: 0xffffffff });
const contentArb: fc.Arbitrary<IndexFileContent> = fc.record({
  supersedes: fc.array(hex32.map((h) => h as IndexId), { maxLength: 4 }),
  packs: fc.array(
    fc.record({
      packId: hex32.map((h) => h as PackId),
      salt: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      entries: fc.array(fc.record({ type: fc.constantFrom(BlobType.data, BlobType.tree), id: fc.uint8Array({ minLength: 32, maxLength: 32 }), offset: u32, length: u32, rawLength: u32 }), { maxLength: 8 }),
    }),
    { maxLength: 5 },
  ),
});

/** Content with Buffers turned to hex, for deep equality across Uint8Array and Buffer. */
function plain(c: IndexFileContent): object {
  return {
    supersedes: c.supersedes,
    packs: c.packs.map((p) => ({ packId: p.packId, salt: Buffer.from(p.salt).toString('hex'), entries: p.entries.map((e) => ({ ...e, id: Buffer.from(e.id).toString('hex') })) })),
  };
}

const id = (byte: number): string => byte.toString(16).padStart(2, '0').repeat(32);
const GOLDEN: IndexFileContent = {
  supersedes: [id(0xaa) as IndexId],
  packs: [
    {
      packId: id(0x01) as PackId,
      salt: new Uint8Array(16).fill(0x51),
      entries: [
        { type: BlobType.data, id: Buffer.from(id(0xd1), 'hex'), offset: 24, length: 1000, rawLength: 4000 },
        { type: BlobType.data, id: Buffer.from(id(0xd2), 'hex'), offset: 1024, length: 65, rawLength: 37 },
      ],
    },
    { packId: id(0x02) as PackId, salt: new Uint8Array(16).fill(0x52), entries: [{ type: BlobType.tree, id: Buffer.from(id(0xe1), 'hex'), offset: 24, length: 300, rawLength: 1200 }] },
  ],
};

describe('encodeIndexFile / decodeIndexFile', () => {
  it('encodes packs with compact entries to the same bytes as with entry objects', () => {
    fc.assert(
      fc.property(contentArb, (c) => {
        const compact = { supersedes: c.supersedes, packs: c.packs.map((p, k) => (k % 2 === 0 ? { packId: p.packId, salt: p.salt, ...compactEntries(p.entries) } : p)) };
        expect(encodeIndexFile(compact).equals(encodeIndexFile(c))).toBe(true);
      }),
    );
  });

  it('round-trips any content', () => {
    fc.assert(
      fc.property(contentArb, (c) => {
        expect(plain(decodeIndexFile(encodeIndexFile(c)))).toEqual(plain(c));
      }),
    );
  });

  it('has the size the layout predicts: 16 + 32 per superseded file + (52 + 45 per entry) per pack', () => {
    fc.assert(
      fc.property(contentArb, (c) => {
        const entries = c.packs.reduce((n, p) => n + p.entries.length, 0);
        expect(encodeIndexFile(c)).toHaveLength(16 + 32 * c.supersedes.length + 52 * c.packs.length + 45 * entries);
      }),
    );
  });

  it('matches the golden file (format v1)', async () => {
    await expect(hexDump(encodeIndexFile(GOLDEN))).toMatchFileSnapshot('./__golden__/index-file.hex');
  });

  it('starts with "CRNI", version 1 and three zero bytes', () => {
    expect(encodeIndexFile({ packs: [], supersedes: [] }).toString('hex')).toBe('43524e4901000000' + '00000000' + '00000000');
  });

  it('rejects every truncation with IntegrityError', () => {
    const bytes = encodeIndexFile(GOLDEN);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeIndexFile(bytes.subarray(0, n))).toThrow(IntegrityError);
  });

  it.each([
    ['trailing bytes', (b: Buffer) => Buffer.concat([b, Buffer.of(0)])],
    ['bad magic', (b: Buffer) => Buffer.concat([Buffer.from('CRNX'), b.subarray(4)])],
    ['version 2', (b: Buffer) => Buffer.concat([b.subarray(0, 4), Buffer.of(2), b.subarray(5)])],
    ['a pack count too large', (b: Buffer) => Buffer.concat([b.subarray(0, 44), Buffer.from('02000100', 'hex'), b.subarray(48)])],
    ['an unknown blob type', (b: Buffer) => Buffer.concat([b.subarray(0, 100), Buffer.of(7), b.subarray(101)])],
  ])('rejects a file with %s (IntegrityError)', (_label, damage) => {
    expect(() => decodeIndexFile(damage(encodeIndexFile(GOLDEN)))).toThrow(IntegrityError);
  });

  it('refuses to encode a salt that is not 16 bytes', () => {
    const bad = { supersedes: [], packs: [{ packId: id(1) as PackId, salt: new Uint8Array(15), entries: [] }] };
    expect(() => encodeIndexFile(bad)).toThrow(RangeError);
  });
});
