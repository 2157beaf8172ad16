import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Codec, type CodecName, DEFAULT_COMPRESSION, decode, decodeSync, encode, encodeSync } from '../../src/core/codec.js';
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

  it('decodes a zstd frame without a content size (as cairn wrote before its zstd-napi codec), whole or damaged', () => {
    const data = lowEntropyText(300_000);
    const frame = streamedFrame(data);
    expect(zstdBinding.getFrameContentSize(frame)).toBeNull();
    expect(Buffer.compare(decodeSync(Codec.zstd, frame), data)).toBe(0);
    expect(Buffer.compare(decodeSync(Codec.zstd, frame, data.length), data)).toBe(0);
    expect(() => decodeSync(Codec.zstd, frame.subarray(0, frame.length - 9))).toThrow(IntegrityError);
    expect(() => decodeSync(Codec.zstd, Buffer.concat([frame, Buffer.from('junk')]))).toThrow(IntegrityError);
    expect(() => decodeSync(Codec.zstd, frame, data.length - 1)).toThrow(IntegrityError);
  });

  it('writes the content size into each zstd frame, and refuses a frame that claims more than any blob', () => {
    const data = lowEntropyText(50_000);
    const enc = encodeSync(data, { codec: 'zstd', level: 3 });
    expect(zstdBinding.getFrameContentSize(enc.bytes)).toBe(data.length);
    const huge = Buffer.from(encodeSync(Buffer.alloc(1 << 20, 1), { codec: 'zstd', level: 1 }).bytes);
    // frame header descriptor 0xa0 would be followed by an 8-byte size: rewrite it to claim 2^40 bytes
    expect(() => decodeSync(Codec.zstd, withContentSize(huge, 2 ** 40))).toThrow(IntegrityError);
  });

  it('hands out a view of its scratch buffer only when asked', () => {
    const a = lowEntropyText(20_000);
    const kept = encodeSync(a, { codec: 'zstd', level: 3 });
    const view = encodeSync(a, { codec: 'zstd', level: 3 }, true);
    expect(Buffer.compare(kept.bytes, view.bytes)).toBe(0);
    encodeSync(lowEntropyText(30_000).subarray(7000), { codec: 'zstd', level: 3 });
    expect(Buffer.compare(decodeSync(Codec.zstd, kept.bytes), a)).toBe(0);
  });
});

const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding') as {
  CCtx: new () => { compressStream2(dst: Uint8Array, src: Uint8Array, end: number): [number, number, number] };
  getFrameContentSize(frame: Uint8Array): number | null;
  EndDirective: { continue: number; end: number };
};

/** A zstd frame written by streaming, in pieces, which leaves the content size out. */
function streamedFrame(data: Uint8Array): Buffer {
  const ctx = new zstdBinding.CCtx();
  const out: Buffer[] = [];
  let src = data;
  while (src.length > 0) {
    const dst = Buffer.alloc(1 << 20);
    const [, produced, consumed] = ctx.compressStream2(dst, src, zstdBinding.EndDirective.continue);
    out.push(dst.subarray(0, produced));
    src = src.subarray(consumed);
  }
  for (;;) {
    const dst = Buffer.alloc(1 << 20);
    const [remaining, produced] = ctx.compressStream2(dst, new Uint8Array(0), zstdBinding.EndDirective.end);
    out.push(dst.subarray(0, produced));
    if (remaining === 0) return Buffer.concat(out);
  }
}

/** `frame` with its frame header rewritten to an 8-byte content size field of `size`. */
function withContentSize(frame: Buffer, size: number): Buffer {
  const fhd = frame[4]!;
  const fcsBytes = [0, 2, 4, 8][fhd >> 6]!;
  const single = (fhd >> 5) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const headerEnd = 5 + (single ? 0 : 1) + dictBytes + (fcsBytes === 0 && single ? 1 : fcsBytes);
  const head = Buffer.from(frame.subarray(0, 5 + (single ? 0 : 1) + dictBytes));
  head[4] = (3 << 6) | (fhd & 0x3f);
  const fcs = Buffer.alloc(8);
  fcs.writeBigUInt64LE(BigInt(size));
  return Buffer.concat([head, fcs, frame.subarray(headerEnd)]);
}

describe('decode into a caller\'s buffer', () => {
  const text = lowEntropyText(100_000);
  const zstdBody = encodeSync(text, { codec: 'zstd', level: 3 });

  it('decompresses zstd into the buffer given, when it is longer than the raw length', async () => {
    expect(zstdBody.codec).toBe(Codec.zstd);
    const into = Buffer.alloc(200_000);
    const out = decodeSync(zstdBody.codec, zstdBody.bytes, text.length, into);
    expect(Buffer.from(out).equals(Buffer.from(text))).toBe(true);
    expect(out.buffer).toBe(into.buffer);
    const viaAsync = await decode(zstdBody.codec, zstdBody.bytes, text.length, into);
    expect(viaAsync.buffer).toBe(into.buffer);
  });

  it('uses a buffer of its own when the one given is not longer than the raw length', () => {
    const into = Buffer.alloc(text.length);
    const out = decodeSync(zstdBody.codec, zstdBody.bytes, text.length, into);
    expect(Buffer.from(out).equals(Buffer.from(text))).toBe(true);
    expect(out.buffer).not.toBe(into.buffer);
  });

  it('still catches a frame that decodes longer than the index says', () => {
    expect(() => decodeSync(zstdBody.codec, zstdBody.bytes, text.length - 1, Buffer.alloc(200_000))).toThrow(IntegrityError);
  });

  it('returns a raw body as it is, whatever buffer is given', () => {
    const raw = xorshiftBytes(5000, 3);
    expect(decodeSync(Codec.none, raw, raw.length, Buffer.alloc(10_000))).toBe(raw);
  });
});
