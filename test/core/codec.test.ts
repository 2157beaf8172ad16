import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, type CodecName, DEFAULT_COMPRESSION, decode, encode } from '../../src/core/codec.js';
import { IntegrityError } from '../../src/core/errors.js';
import { lowEntropyText, xorshiftBytes } from './fixtures.js';

const CODECS: CodecName[] = ['none', 'lz4', 'zstd'];

/** Blobs from random bytes, from repetitive text, and from a mix, so both codec paths run. */
const blobArb = fc.oneof(
  fc.uint8Array({ maxLength: 8192 }),
  fc.tuple(fc.string({ maxLength: 40 }), fc.nat({ max: 400 })).map(([s, n]) => Buffer.from(s.repeat(n))),
  fc.tuple(fc.nat({ max: 1_000_000 }), fc.nat({ max: 20_000 })).map(([start, n]) => lowEntropyText(start + n).subarray(start)),
);

describe('codec', () => {
  it('pins the codec byte values (format v1)', () => {
    expect(Codec).toEqual({ none: 0, lz4: 1, zstd: 2 });
  });

  it('defaults to zstd level 1', () => {
    expect(DEFAULT_COMPRESSION).toEqual({ codec: 'zstd', level: 3 });
  });

  it.each(CODECS)('round-trips any blob through encode and decode (%s)', async (codec) => {
    await fc.assert(
      fc.asyncProperty(blobArb, fc.integer({ min: 1, max: 19 }), async (data, level) => {
        const enc = await encode(data, { codec, level });
        expect([Codec.none, Codec[codec]]).toContain(enc.codec);
        const dec = await decode(enc.codec, enc.bytes, data.length);
        expect(Buffer.compare(dec, data)).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it.each(['lz4', 'zstd'] as const)('compresses repetitive data with %s and says so in the codec byte', async (codec) => {
    const data = lowEntropyText(256 * 1024);
    const enc = await encode(data, { codec, level: 3 });
    expect(enc.codec).toBe(Codec[codec]);
    expect(enc.bytes.length).toBeLessThan(data.length / 2);
  });

  it('writes lz4 as a u32 LE raw length before an LZ4 block, and zstd as a standard frame (docs/format.md §6.1)', async () => {
    const data = lowEntropyText(100_000);
    const lz4 = await encode(data, { codec: 'lz4', level: 1 });
    expect(Buffer.from(lz4.bytes).readUInt32LE(0)).toBe(100_000);
    const zstd = await encode(data, { codec: 'zstd', level: 1 });
    expect(Buffer.from(zstd.bytes).subarray(0, 4).toString('hex')).toBe('28b52ffd');
  });

  it.each(['lz4', 'zstd'] as const)('stores incompressible data raw with Codec.none (%s)', async (codec) => {
    const data = xorshiftBytes(64 * 1024, 9);
    const enc = await encode(data, { codec, level: 3 });
    expect(enc.codec).toBe(Codec.none);
    expect(Buffer.compare(enc.bytes, data)).toBe(0);
  });

  it('stores blobs under 64 bytes raw', async () => {
    const data = new Uint8Array(63);
    expect((await encode(data, { codec: 'zstd', level: 3 })).codec).toBe(Codec.none);
    expect((await encode(new Uint8Array(64), { codec: 'zstd', level: 3 })).codec).toBe(Codec.zstd);
  });

  it('keeps compression only when it saves at least 1/32 of the bytes', async () => {
    // Half random, half zeros compresses by about half: kept. Random with a few zeros: not kept.
    const half = Buffer.concat([xorshiftBytes(8192, 3), new Uint8Array(8192)]);
    expect((await encode(half, { codec: 'zstd', level: 1 })).codec).toBe(Codec.zstd);
    const barely = Buffer.concat([xorshiftBytes(16384, 3), new Uint8Array(200)]);
    expect((await encode(barely, { codec: 'zstd', level: 1 })).codec).toBe(Codec.none);
  });

  it.each([3, 7, 255])('rejects unknown codec byte %i with IntegrityError', async (byte) => {
    await expect(decode(byte, new Uint8Array(10))).rejects.toBeInstanceOf(IntegrityError);
  });

  it.each(CODECS)('rejects a decoded length other than rawLength with IntegrityError (%s)', async (codec) => {
    const data = lowEntropyText(10_000);
    const enc = await encode(data, { codec, level: 1 });
    await expect(decode(enc.codec, enc.bytes, data.length + 1)).rejects.toBeInstanceOf(IntegrityError);
    await expect(decode(enc.codec, enc.bytes, data.length - 1)).rejects.toBeInstanceOf(IntegrityError);
    await expect(decode(enc.codec, enc.bytes)).resolves.toHaveLength(data.length);
  });

  it.each(['lz4', 'zstd'] as const)('rejects a damaged %s body with IntegrityError', async (codec) => {
    const data = lowEntropyText(10_000);
    const enc = await encode(data, { codec, level: 1 });
    const cut = enc.bytes.subarray(0, enc.bytes.length >> 1);
    await expect(decode(enc.codec, cut, data.length)).rejects.toBeInstanceOf(IntegrityError);
    await expect(decode(enc.codec, xorshiftBytes(100, 5), data.length)).rejects.toBeInstanceOf(IntegrityError);
  });
});
