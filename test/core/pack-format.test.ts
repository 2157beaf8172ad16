import { hkdfSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/core/errors.js';
import {
  BlobType,
  ENTRY_BYTES,
  PACK_PREAMBLE_BYTES,
  PACK_SALT_BYTES,
  PACK_TRAILER_BYTES,
  type PackEntry,
  blobAad,
  headerRange,
  packFooter,
  packKey,
  packPreamble,
  packSalt,
  readEntries,
  readPackHeader,
  writeEntries,
} from '../../src/core/pack-format.js';
import { flipBit } from './fixtures.js';

const random = (n: number): Uint8Array => randomBytes(n);
const DATA_KEY = new Uint8Array(32).fill(0x22);
const SALT = new Uint8Array(16).fill(0x33);

const u32 = fc.nat({ max: 0xffffffff });
const entryArb: fc.Arbitrary<PackEntry> = fc.record({
  type: fc.constantFrom(BlobType.data, BlobType.tree),
  id: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  offset: u32,
  length: u32,
  rawLength: u32,
});

const plainEntries = (es: readonly PackEntry[]): object[] => es.map((e) => ({ ...e, id: Buffer.from(e.id).toString('hex') }));

describe('pack format constants', () => {
  it('pins the sizes of format v1', () => {
    expect({ PACK_PREAMBLE_BYTES, PACK_TRAILER_BYTES, ENTRY_BYTES, PACK_SALT_BYTES }).toEqual({ PACK_PREAMBLE_BYTES: 24, PACK_TRAILER_BYTES: 8, ENTRY_BYTES: 45, PACK_SALT_BYTES: 16 });
    expect(BlobType).toEqual({ data: 0, tree: 1 });
  });
});

describe('packPreamble / packSalt', () => {
  it('writes "CRNP", version 1, three zero bytes and the salt, and reads the salt back', () => {
    const p = packPreamble(SALT);
    expect(p.toString('hex')).toBe('43524e50' + '01000000' + '33'.repeat(16));
    expect(Buffer.from(packSalt(p)).equals(Buffer.from(SALT))).toBe(true);
  });

  it.each([
    ['bad magic', Buffer.concat([Buffer.from('CRNQ'), Buffer.alloc(20)])],
    ['version 2', Buffer.concat([Buffer.from('CRNP'), Buffer.of(2, 0, 0, 0), Buffer.alloc(16)])],
    ['too short', Buffer.from('CRNP\x01\0\0\0', 'latin1')],
  ])('rejects a preamble with %s (IntegrityError)', (_label, bytes) => {
    expect(() => packSalt(bytes)).toThrow(IntegrityError);
  });
});

describe('writeEntries / readEntries', () => {
  it('round-trips any entries in 45-byte records', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), fc.nat({ max: 16 }), (entries, at) => {
        const buf = Buffer.alloc(at + entries.length * ENTRY_BYTES);
        expect(writeEntries(entries, buf, at)).toBe(buf.length);
        expect(plainEntries(readEntries(buf, at, entries.length))).toEqual(plainEntries(entries));
      }),
    );
  });

  it('writes type, id, then offset, length and raw length as u32 little-endian', () => {
    const id = Uint8Array.from({ length: 32 }, (_, i) => i);
    const buf = Buffer.alloc(ENTRY_BYTES);
    writeEntries([{ type: BlobType.tree, id, offset: 0x01020304, length: 0x0a0b0c0d, rawLength: 0xfffffffe }], buf, 0);
    expect(buf.toString('hex')).toBe('01' + Buffer.from(id).toString('hex') + '04030201' + '0d0c0b0a' + 'feffffff');
  });

  it('rejects an unknown blob type and a truncated table (IntegrityError)', () => {
    const buf = Buffer.alloc(ENTRY_BYTES);
    buf[0] = 2;
    expect(() => readEntries(buf, 0, 1)).toThrow(IntegrityError);
    expect(() => readEntries(Buffer.alloc(ENTRY_BYTES - 1), 0, 1)).toThrow(IntegrityError);
  });
});

describe('blobAad / packKey', () => {
  it('binds a blob to its type byte and 32 id bytes', () => {
    const id = new Uint8Array(32).fill(0xab);
    expect(blobAad(BlobType.tree, id).toString('hex')).toBe('01' + 'ab'.repeat(32));
    expect(blobAad(BlobType.data, id).toString('hex')).toBe('00' + 'ab'.repeat(32));
  });

  it('derives the pack key as HKDF-SHA256(dataKey, salt, "cairn pack v1")', () => {
    expect(packKey(DATA_KEY, SALT).equals(Buffer.from(hkdfSync('sha256', DATA_KEY, SALT, 'cairn pack v1', 32)))).toBe(true);
  });
});

describe('packFooter / headerRange / readPackHeader', () => {
  /** A pack body of `blobArea` filler bytes after the preamble, with a footer for `entries`. */
  function pack(entries: readonly PackEntry[], blobArea: number): Buffer {
    return Buffer.concat([packPreamble(SALT), Buffer.alloc(blobArea), packFooter(packKey(DATA_KEY, SALT), entries, random)]);
  }

  it('round-trips the header of any pack through the trailer', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ type: fc.constantFrom(BlobType.data, BlobType.tree), id: fc.uint8Array({ minLength: 32, maxLength: 32 }), length: fc.nat({ max: 100 }) }), { maxLength: 12 }), (blobs) => {
        let offset = PACK_PREAMBLE_BYTES;
        const entries = blobs.map((b) => {
          const e = { ...b, offset, rawLength: b.length * 3 };
          offset += b.length;
          return e;
        });
        const bytes = pack(entries, offset - PACK_PREAMBLE_BYTES);
        const h = headerRange(bytes.subarray(bytes.length - PACK_TRAILER_BYTES), bytes.length);
        expect(h.offset).toBe(offset);
        expect(h.length).toBe(4 + entries.length * ENTRY_BYTES + 28);
        const read = readPackHeader(packKey(DATA_KEY, SALT), bytes.subarray(h.offset, h.offset + h.length), h.offset);
        expect(plainEntries(read)).toEqual(plainEntries(entries));
      }),
    );
  });

  it('ends a pack with the sealed header length (u32 LE) and "CRNE"', () => {
    const footer = packFooter(packKey(DATA_KEY, SALT), [], random);
    expect(footer).toHaveLength(4 + 28 + 8);
    expect(footer.readUInt32LE(footer.length - 8)).toBe(32);
    expect(footer.subarray(footer.length - 4).toString('latin1')).toBe('CRNE');
  });

  it.each([
    ['bad end magic', (t: Buffer) => t.write('XRNE', 4, 'latin1')],
    ['a length past the preamble', (t: Buffer) => t.writeUInt32LE(10_000, 0)],
  ])('rejects a trailer with %s (IntegrityError)', (_label, damage) => {
    const bytes = pack([], 0);
    const trailer = Buffer.from(bytes.subarray(bytes.length - 8));
    damage(trailer);
    expect(() => headerRange(trailer, bytes.length)).toThrow(IntegrityError);
    expect(() => headerRange(trailer.subarray(0, 7), bytes.length)).toThrow(IntegrityError);
  });

  it('rejects a header with any bit flipped, or opened with another key (IntegrityError)', () => {
    const entries = [{ type: BlobType.data, id: new Uint8Array(32).fill(1), offset: 24, length: 50, rawLength: 70 }];
    const bytes = pack(entries, 50);
    const h = headerRange(bytes.subarray(bytes.length - 8), bytes.length);
    const sealed = bytes.subarray(h.offset, h.offset + h.length);
    for (let bit = 0; bit < sealed.length * 8; bit += 7) {
      expect(() => readPackHeader(packKey(DATA_KEY, SALT), flipBit(sealed, bit), h.offset)).toThrow(IntegrityError);
    }
    expect(() => readPackHeader(packKey(DATA_KEY, new Uint8Array(16)), sealed, h.offset)).toThrow(IntegrityError);
  });

  it.each([
    ['before the preamble ends', { offset: 10, length: 20 }],
    ['past the header', { offset: 24, length: 51 }],
  ])('rejects a header whose entry lies %s (IntegrityError)', (_label, place) => {
    const entries = [{ type: BlobType.data, id: new Uint8Array(32).fill(1), rawLength: 1, ...place }];
    const bytes = pack(entries, 50);
    const h = headerRange(bytes.subarray(bytes.length - 8), bytes.length);
    expect(() => readPackHeader(packKey(DATA_KEY, SALT), bytes.subarray(h.offset, h.offset + h.length), h.offset)).toThrow(IntegrityError);
  });
});
