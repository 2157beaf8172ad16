import { Blake3Hasher } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Chunker, type ChunkerParams, DEFAULT_CHUNKER_PARAMS, FastCdcChunker, checkChunkerParams, chunkLengths, deriveGearTable } from '../../src/core/chunker.js';
import { GearScanMemory, gearScanMemory } from '../../src/core/gear-scan.js';
import { plainHash } from '../../src/core/hash.js';
import { lowEntropyText, xorshiftBytes } from './fixtures.js';

const MiB = 1024 * 1024;
const GEAR = deriveGearTable(new Uint8Array(32).fill(7));
const RANDOM_24MIB = xorshiftBytes(24 * MiB, 42);
const TEXT_16MIB = lowEntropyText(16 * MiB);
const SMALL: ChunkerParams = { minSizeBytes: 2048, avgSizeBytes: 8192, maxSizeBytes: 65536 };
/** Parameters for the property tests: small enough to cut often, and the edge cases (min = avg
 *  = max, avg = min, max far past avg). */
const PARAM_SETS: ChunkerParams[] = [
  SMALL,
  { minSizeBytes: 256, avgSizeBytes: 1024, maxSizeBytes: 4096 },
  { minSizeBytes: 1000, avgSizeBytes: 4096, maxSizeBytes: 5000 },
  { minSizeBytes: 64, avgSizeBytes: 128, maxSizeBytes: 128 },
  { minSizeBytes: 512, avgSizeBytes: 512, maxSizeBytes: 512 },
  { minSizeBytes: 64, avgSizeBytes: 64, maxSizeBytes: 8192 },
  { minSizeBytes: 100, avgSizeBytes: 128, maxSizeBytes: 100_000 },
];

/** Chunk lengths when `data` is handed to the chunker in the pieces cut at `splits`. */
function streamedLengths(chunker: Chunker, data: Uint8Array, splits: readonly number[]): number[] {
  const bounds = [0, ...[...splits].sort((a, b) => a - b), data.length];
  chunker.reset();
  const out: number[] = [];
  let pending = 0;
  for (let k = 1; k < bounds.length; k++) {
    let buf = data.subarray(bounds[k - 1], bounds[k]);
    while (buf.length > 0) {
      const cut = chunker.nextCut(buf);
      if (cut < 0) {
        pending += buf.length;
        break;
      }
      out.push(pending + cut);
      pending = 0;
      buf = buf.subarray(cut);
    }
  }
  if (pending > 0) out.push(pending);
  return out;
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** The gear table as docs/format.md §5.1 specifies it, written from the page alone. */
function referenceGear(idKey: Uint8Array): Int32Array {
  const k = Blake3Hasher.deriveKey('cairn 2026-11 fastcdc gear table v1', idKey);
  const table = new Int32Array(256);
  for (let b = 0; b < 32; b++) {
    const h = Blake3Hasher.newKeyed(k);
    h.update(Uint8Array.of(b));
    const d = h.digestBuffer();
    for (let j = 0; j < 8; j++) table[8 * b + j] = d.readInt32LE(4 * j);
  }
  return table;
}

/** FastCDC as docs/format.md §5.1 specifies it, one byte at a time, written from the page alone. */
function referenceLengths(gear: Int32Array, p: ChunkerParams, data: Uint8Array): number[] {
  const bits = Math.log2(p.avgSizeBytes);
  const top = (n: number): number => ((0xffffffff >>> (32 - n)) << (32 - n)) >>> 0;
  const maskS = top(bits + 2);
  const maskL = top(bits - 2);
  const out: number[] = [];
  for (let start = 0; start < data.length; ) {
    let h = 0;
    let len = -1;
    for (let pos = p.minSizeBytes; pos < p.maxSizeBytes && start + pos < data.length; pos++) {
      h = (((h << 1) >>> 0) + (gear[data[start + pos]!]! >>> 0)) >>> 0;
      if ((h & (pos < p.avgSizeBytes ? maskS : maskL)) === 0) {
        len = pos + 1;
        break;
      }
    }
    if (len < 0) len = Math.min(p.maxSizeBytes, data.length - start);
    out.push(len);
    start += len;
  }
  return out;
}

describe('deriveGearTable', () => {
  it('derives the pinned table from a secret (a change moves every cut point)', () => {
    expect(GEAR).toHaveLength(256);
    expect(Array.from(GEAR.subarray(0, 4))).toEqual([-1216768386, 505081883, -201459628, -1919761790]);
    expect(plainHash(new Uint8Array(GEAR.buffer))).toBe('89b6a0653763ddfa25df7295226875b88cd89a07ef8df3d9b23ff66a78a6cd7a');
  });

  it('follows docs/format.md §5.1', () => {
    for (const fill of [0, 7, 255]) {
      const key = new Uint8Array(32).fill(fill);
      expect(Array.from(deriveGearTable(key))).toEqual(Array.from(referenceGear(key)));
    }
  });

  it('gives different tables for different secrets', () => {
    const other = deriveGearTable(new Uint8Array(32).fill(8));
    const same = Array.from(GEAR).filter((v, i) => v === other[i]).length;
    expect(same).toBeLessThan(4);
  });
});

describe('FastCdcChunker stability vectors (format v1: these must never change)', () => {
  it.each([
    [
      '24 MiB xorshift(42), default params', RANDOM_24MIB, DEFAULT_CHUNKER_PARAMS,
      [1643012, 1516801, 1074113, 1199972, 1271426, 1223246, 1096465, 1213827, 1081125, 1296233, 1188146, 1959288, 559309, 949027, 707064, 1221776, 1230492, 1386530, 1854498, 1493474],
    ],
    [
      '16 MiB low-entropy text, default params', TEXT_16MIB, DEFAULT_CHUNKER_PARAMS,
      [1702412, 1250546, 1299952, 717403, 1756558, 1354194, 1334810, 1561585, 1271504, 1383402, 1440038, 1530663, 174149],
    ],
    [
      '1 MiB xorshift(42), 2/8/64 KiB', RANDOM_24MIB.subarray(0, MiB), SMALL,
      [
        8343, 9056, 9885, 8497, 13352, 8738, 9449, 12764, 9799, 9166, 5521, 11149, 8841, 8478, 14881, 11669, 9221, 8366, 9053, 8298, 9847, 3602, 10258, 8333, 5160, 13717, 9116, 3089,
        8501, 4339, 13397, 13275, 10147, 8389, 10361, 8376, 9341, 5455, 11784, 13435, 8572, 9271, 10876, 2389, 9687, 10306, 8775, 10470, 9342, 8378, 8596, 9154, 9289, 6832, 16238, 8605,
        8816, 9260, 11081, 5901, 9970, 9882, 11586, 8503, 9000, 8306, 11993, 9799, 4754, 6439, 11258, 8456, 9163, 8619, 8517, 9347, 12873, 9970, 5724, 9149, 9136, 8300, 6541, 9653,
        16215, 10874, 8504, 8809, 12906, 11616, 11191, 9508, 11251, 8582, 10102, 7690, 11739, 9959, 3021, 15084, 8262, 8292, 13215, 4682, 10215, 9255, 9196, 9323, 8320, 4683, 12421,
        8358, 2079,
      ],
    ],
    [
      '1 MiB low-entropy text, 2/8/64 KiB', TEXT_16MIB.subarray(0, MiB), SMALL,
      [
        8597, 13009, 8426, 13533, 8890, 9339, 10558, 12295, 10583, 9347, 9687, 10156, 9408, 11569, 8776, 10172, 8233, 8512, 8915, 9110, 8289, 9474, 16753, 8416, 8723, 8625, 8544,
        9138, 11609, 17092, 2723, 8543, 8344, 13403, 9705, 8213, 9765, 9637, 9030, 3206, 10657, 8803, 8531, 10080, 8533, 8442, 10385, 8411, 8856, 8283, 3288, 9901, 8690, 8515, 13100,
        9696, 8840, 11721, 12296, 8449, 8828, 9835, 5107, 16373, 7372, 8868, 2076, 9435, 12477, 4097, 11274, 13548, 2172, 9707, 15397, 9445, 9431, 8462, 12665, 7763, 11520, 12869,
        5727, 13841, 8658, 9860, 10935, 10936, 10616, 12412, 10761, 11262, 9603, 8655, 8502, 15623, 5461, 6314, 8743, 8197, 9159, 10137, 10633, 9508, 9465, 9585, 8535, 10392, 4555,
        7956,
      ],
    ],
  ])('cuts %s at the pinned points', (_label, data, params, expected) => {
    const lengths = chunkLengths(new FastCdcChunker(GEAR, params), data);
    expect(lengths).toEqual(expected);
    expect(sum(lengths)).toBe(data.length);
  });

  it('cuts the 24 MiB vector at the same points when it is read in 1 MiB and odd-sized buffers', () => {
    const chunker = new FastCdcChunker(GEAR);
    const expected = chunkLengths(chunker, RANDOM_24MIB);
    const mib = Array.from({ length: 23 }, (_, i) => (i + 1) * MiB);
    const odd = Array.from({ length: 200 }, (_, i) => i * 123_457 + 1);
    expect(streamedLengths(chunker, RANDOM_24MIB, mib)).toEqual(expected);
    expect(streamedLengths(chunker, RANDOM_24MIB, odd)).toEqual(expected);
  });
});

describe('FastCdcChunker', () => {
  it.each([
    ['default', DEFAULT_CHUNKER_PARAMS, RANDOM_24MIB],
    ['default on text', DEFAULT_CHUNKER_PARAMS, TEXT_16MIB],
    ['2/8/64 KiB', SMALL, RANDOM_24MIB.subarray(0, 4 * MiB)],
    ['64/128/128 B', { minSizeBytes: 64, avgSizeBytes: 128, maxSizeBytes: 128 }, RANDOM_24MIB.subarray(0, 64 * 1024)],
  ])('keeps every chunk but the last within [min, max] (%s)', (_label, params, data) => {
    const lengths = chunkLengths(new FastCdcChunker(GEAR, params), data);
    expect(lengths.length).toBeGreaterThan(1);
    for (const n of lengths.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(params.minSizeBytes);
      expect(n).toBeLessThanOrEqual(params.maxSizeBytes);
    }
    expect(lengths.at(-1)).toBeGreaterThan(0);
    expect(lengths.at(-1)).toBeLessThanOrEqual(params.maxSizeBytes);
    expect(sum(lengths)).toBe(data.length);
  });

  it('averages near the target size on random data (normalized chunking)', () => {
    const lengths = chunkLengths(new FastCdcChunker(GEAR, SMALL), RANDOM_24MIB.subarray(0, 8 * MiB));
    const mean = (8 * MiB) / lengths.length;
    expect(mean).toBeGreaterThan(SMALL.avgSizeBytes * 0.9);
    expect(mean).toBeLessThan(SMALL.avgSizeBytes * 1.5);
  });

  it.each([
    ['default', DEFAULT_CHUNKER_PARAMS, 20 * MiB, [8 * MiB, 8 * MiB, 4 * MiB]],
    ['2/8/64 KiB', SMALL, 200 * 1024, [65536, 65536, 65536, 200 * 1024 - 3 * 65536]],
  ])('cuts all-zero input into max-size chunks (%s)', (_label, params, size, expected) => {
    expect(chunkLengths(new FastCdcChunker(GEAR, params), new Uint8Array(size))).toEqual(expected);
  });

  it('gives different cut points for a different secret', () => {
    const other = chunkLengths(new FastCdcChunker(deriveGearTable(new Uint8Array(32).fill(8))), RANDOM_24MIB);
    const mine = chunkLengths(new FastCdcChunker(GEAR), RANDOM_24MIB);
    expect(other).not.toEqual(mine);
    const cuts = (ls: number[]): Set<number> => new Set(ls.map((_, i) => sum(ls.slice(0, i + 1))));
    const shared = [...cuts(mine)].filter((c) => cuts(other).has(c) && c !== RANDOM_24MIB.length);
    expect(shared).toEqual([]);
  });

  it('finds the same cut points after an insertion (content-defined, not offset-defined)', () => {
    const base = RANDOM_24MIB.subarray(0, 2 * MiB);
    const edited = Buffer.concat([base.subarray(0, 100_000), Buffer.from('inserted bytes'), base.subarray(100_000)]);
    const cuts = (data: Uint8Array, shift: number): Set<number> => {
      const out = new Set<number>();
      let off = 0;
      for (const n of chunkLengths(new FastCdcChunker(GEAR, SMALL), data)) out.add((off += n) - shift);
      return out;
    };
    const before = [...cuts(base, 0)].filter((c) => c > 200_000);
    const after = cuts(edited, 'inserted bytes'.length);
    expect(before.length).toBeGreaterThan(100);
    expect(before.every((c) => after.has(c))).toBe(true);
  });

  it('does not depend on how the input is split into buffers (property)', () => {
    const sources = [RANDOM_24MIB, TEXT_16MIB, new Uint8Array(300_000), Buffer.concat([TEXT_16MIB.subarray(0, 50_000), new Uint8Array(70_000), RANDOM_24MIB.subarray(0, 80_000)])];
    const input = fc
      .record({ source: fc.integer({ min: 0, max: sources.length - 1 }), start: fc.nat({ max: 100_000 }), length: fc.nat({ max: 150_000 }), params: fc.constantFrom(...PARAM_SETS) })
      .chain((r) => {
        const src = sources[r.source]!;
        const data = src.subarray(Math.min(r.start, src.length), Math.min(r.start + r.length, src.length));
        return fc.record({ data: fc.constant(data), params: fc.constant(r.params), splits: fc.array(fc.nat({ max: data.length }), { maxLength: 60 }) });
      });
    fc.assert(
      fc.property(input, ({ data, params, splits }) => {
        const chunker = new FastCdcChunker(GEAR, params);
        const whole = chunkLengths(chunker, data);
        const streamed = streamedLengths(chunker, data, splits);
        expect(streamed).toEqual(whole);
        expect(streamed.every((n) => n > 0)).toBe(true);
        expect(sum(whole)).toBe(data.length);
      }),
      { numRuns: 150 },
    );
  });

  it('cuts exactly where the byte-at-a-time algorithm of docs/format.md §5.1 does (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(RANDOM_24MIB, TEXT_16MIB), fc.nat({ max: 1_000_000 }), fc.nat({ max: 120_000 }), fc.constantFrom(...PARAM_SETS), (src, start, length, params) => {
        const data = src.subarray(start, start + length);
        expect(chunkLengths(new FastCdcChunker(GEAR, params), data)).toEqual(referenceLengths(GEAR, params, data));
      }),
      { numRuns: 60 },
    );
    expect(chunkLengths(new FastCdcChunker(GEAR), RANDOM_24MIB.subarray(0, 6 * MiB))).toEqual(referenceLengths(GEAR, DEFAULT_CHUNKER_PARAMS, RANDOM_24MIB.subarray(0, 6 * MiB)));
  });

  it('gives the same cuts when fed one byte at a time', () => {
    const params = { minSizeBytes: 64, avgSizeBytes: 256, maxSizeBytes: 1024 };
    const data = RANDOM_24MIB.subarray(0, 20_000);
    const chunker = new FastCdcChunker(GEAR, params);
    expect(streamedLengths(chunker, data, Array.from({ length: data.length - 1 }, (_, i) => i + 1))).toEqual(chunkLengths(chunker, data));
  });

  it('carries state across calls until reset() forgets the current chunk', () => {
    const chunker = new FastCdcChunker(GEAR, SMALL);
    const data = RANDOM_24MIB.subarray(0, 100_000);
    const first = chunkLengths(chunker, data)[0]!;
    expect(chunker.nextCut(data.subarray(0, first - 1))).toBe(-1);
    expect(chunker.nextCut(data.subarray(first - 1))).toBe(1);
    expect(chunker.nextCut(data.subarray(0, first - 1))).toBe(-1);
    chunker.reset();
    expect(chunker.nextCut(data)).toBe(first);
  });

  it('returns -1 for an empty buffer and keeps its state', () => {
    const chunker = new FastCdcChunker(GEAR, SMALL);
    const data = RANDOM_24MIB.subarray(0, 100_000);
    const first = chunkLengths(chunker, data)[0]!;
    expect(chunker.nextCut(data.subarray(0, 10))).toBe(-1);
    expect(chunker.nextCut(new Uint8Array(0))).toBe(-1);
    expect(chunker.nextCut(data.subarray(10))).toBe(first - 10);
  });

  it('exposes maxSizeBytes and rejects a gear table of the wrong size', () => {
    expect(new FastCdcChunker(GEAR, SMALL).maxSizeBytes).toBe(65536);
    expect(() => new FastCdcChunker(new Int32Array(255), SMALL)).toThrow(RangeError);
    expect(() => new FastCdcChunker(GEAR, { ...SMALL, avgSizeBytes: 5000 })).toThrow(RangeError);
  });
});

describe('checkChunkerParams', () => {
  it.each([
    ['default', DEFAULT_CHUNKER_PARAMS],
    ['2/8/64 KiB', SMALL],
    ['the smallest', { minSizeBytes: 64, avgSizeBytes: 64, maxSizeBytes: 64 }],
    ['the largest', { minSizeBytes: 64 * MiB, avgSizeBytes: 64 * MiB, maxSizeBytes: 64 * MiB }],
  ])('accepts %s', (_label, p) => {
    expect(() => checkChunkerParams(p)).not.toThrow();
  });

  it.each([
    ['min below 64', { minSizeBytes: 32, avgSizeBytes: 1024, maxSizeBytes: 4096 }],
    ['min above avg', { minSizeBytes: 2048, avgSizeBytes: 1024, maxSizeBytes: 4096 }],
    ['avg above max', { minSizeBytes: 512, avgSizeBytes: 8192, maxSizeBytes: 4096 }],
    ['max above 64 MiB', { minSizeBytes: 512, avgSizeBytes: 1024, maxSizeBytes: 64 * MiB + 1 }],
    ['avg not a power of two', { minSizeBytes: 512, avgSizeBytes: 1000, maxSizeBytes: 4096 }],
    ['avg not an integer', { minSizeBytes: 512, avgSizeBytes: 1024.5, maxSizeBytes: 4096 }],
    ['NaN', { minSizeBytes: Number.NaN, avgSizeBytes: 1024, maxSizeBytes: 4096 }],
    ['zero', { minSizeBytes: 0, avgSizeBytes: 0, maxSizeBytes: 0 }],
  ])('rejects %s', (_label, p) => {
    expect(() => checkChunkerParams(p)).toThrow(RangeError);
  });
});

describe('FastCdcChunker over a GearScanMemory (the scan in WebAssembly)', () => {
  /** `data` copied into a GearScanMemory at `offset` (to try every alignment), the view of it,
   *  and a chunker that scans there. */
  function inMemory(data: Uint8Array, params: ChunkerParams, offset = 0): { view: Buffer; chunker: FastCdcChunker } {
    const memory = new GearScanMemory(GEAR, offset + data.length, offset + data.length);
    const view = memory.buffer.subarray(offset, offset + data.length);
    view.set(data);
    return { view, chunker: new FastCdcChunker(GEAR, params, memory) };
  }

  it.each([
    ['24 MiB xorshift(42), default params', RANDOM_24MIB, DEFAULT_CHUNKER_PARAMS],
    ['16 MiB low-entropy text, default params', TEXT_16MIB, DEFAULT_CHUNKER_PARAMS],
    ['1 MiB xorshift(42), 2/8/64 KiB', RANDOM_24MIB.subarray(0, MiB), SMALL],
    ['1 MiB low-entropy text, 2/8/64 KiB', TEXT_16MIB.subarray(0, MiB), SMALL],
    ['20 MiB of zeros, default params', new Uint8Array(20 * MiB), DEFAULT_CHUNKER_PARAMS],
  ])('cuts %s where the JavaScript scan does (the stability vectors)', (_label, data, params) => {
    const { view, chunker } = inMemory(data, params);
    const lengths = chunkLengths(chunker, view);
    expect(lengths).toEqual(chunkLengths(new FastCdcChunker(GEAR, params), data));
    expect(lengths.length).toBeGreaterThan(2);
  });

  it('cuts where the JavaScript scan does at any alignment, for any parameters and reads (property)', () => {
    const input = fc
      .record({ src: fc.constantFrom(RANDOM_24MIB, TEXT_16MIB), start: fc.nat({ max: 1_000_000 }), length: fc.nat({ max: 150_000 }), offset: fc.nat({ max: 7 }), params: fc.constantFrom(...PARAM_SETS) })
      .chain((r) => {
        const data = r.src.subarray(r.start, r.start + r.length);
        return fc.record({ data: fc.constant(data), offset: fc.constant(r.offset), params: fc.constant(r.params), splits: fc.array(fc.nat({ max: data.length }), { maxLength: 40 }) });
      });
    fc.assert(
      fc.property(input, ({ data, offset, params, splits }) => {
        const { view, chunker } = inMemory(data, params, offset);
        expect(streamedLengths(chunker, view, splits)).toEqual(chunkLengths(new FastCdcChunker(GEAR, params), data));
      }),
      { numRuns: 150 },
    );
  });

  it('scans each byte the way docs/format.md §5.1 does, cut or no cut, at every alignment and length', () => {
    // the raw scan against one byte at a time: every start from 0 to 7 and end up to 4 words on
    // (the loop of four bytes per load and the loop of the last 0-3), with masks that cut often
    const data = RANDOM_24MIB.subarray(0, 64 * 1024);
    const memory = new GearScanMemory(GEAR, data.length, data.length);
    memory.buffer.set(data);
    const at = memory.buffer.byteOffset;
    for (const bits of [2, 4, 12, 32]) {
      const mask = bits >= 32 ? -1 : ~((1 << (32 - bits)) - 1);
      for (let start = 0; start < 8; start++) {
        for (let end = start; end < start + 20; end++) {
          for (const h0 of [0, -1, 0x12345678]) {
            let h = h0;
            let want = -1;
            for (let i = start; i < end; i++) {
              h = ((h << 1) + GEAR[data[i]!]!) | 0;
              if ((h & mask) === 0) {
                want = i + 1;
                break;
              }
            }
            const got = memory.scan(at + start, at + end, h0, mask);
            expect(got < 0 ? -1 : got - at).toBe(want);
            if (want < 0) expect(memory.hash).toBe(h);
          }
        }
      }
    }
  });

  it('keeps its contents in place when it grows; views of it from before are not its buffer any more', () => {
    const memory = new GearScanMemory(GEAR, 100_000, 10 * MiB);
    const before = memory.buffer;
    before.set(RANDOM_24MIB.subarray(0, 100_000));
    expect(memory.holds(before.subarray(10))).toBe(true);
    const after = memory.grow(5 * MiB);
    expect(after.length).toBe(5 * MiB);
    expect(Buffer.compare(after.subarray(0, 100_000), RANDOM_24MIB.subarray(0, 100_000))).toBe(0);
    expect(memory.holds(after)).toBe(true);
    expect(memory.holds(before)).toBe(false);
    expect(memory.holds(RANDOM_24MIB)).toBe(false);
    // a chunker given the memory still cuts buffers elsewhere, in JavaScript
    const chunker = new FastCdcChunker(GEAR, SMALL, memory);
    expect(chunkLengths(chunker, RANDOM_24MIB.subarray(0, MiB))).toEqual(chunkLengths(new FastCdcChunker(GEAR, SMALL), RANDOM_24MIB.subarray(0, MiB)));
  });

  it('is refused by a chunker whose gear table is another (its cuts would differ, silently)', () => {
    const memory = new GearScanMemory(GEAR, MiB, MiB);
    expect(() => new FastCdcChunker(deriveGearTable(new Uint8Array(32).fill(8)), SMALL, memory)).toThrow('another gear table');
    // the same table, as the same array or a copy, is fine
    expect(() => new FastCdcChunker(GEAR, SMALL, memory)).not.toThrow();
    expect(() => new FastCdcChunker(Int32Array.from(GEAR), SMALL, memory)).not.toThrow();
  });

  it('is not had when the engine cannot reserve the memory (the caller reads into plain buffers)', () => {
    // past 4 GiB: more than a 32-bit WebAssembly memory can be
    expect(gearScanMemory(GEAR, 1024, 2 ** 33)).toBeUndefined();
    expect(gearScanMemory(GEAR, 1024, MiB)).toBeInstanceOf(GearScanMemory);
  });
});
