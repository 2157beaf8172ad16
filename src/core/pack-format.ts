import { IntegrityError } from './errors.js';
import { ID_BYTES } from './ids.js';
import { open, sealParts, subkey } from './seal.js';
import type { RandomBytes } from './ids.js';

/** Blob types: data chunks and directory trees live in separate packs. */
export const BlobType = { data: 0, tree: 1 } as const;
/** A blob type value. */
export type BlobTypeId = (typeof BlobType)[keyof typeof BlobType];

/** A blob's place in its pack, as the pack header and index files record it. */
export interface PackEntry {
  readonly type: BlobTypeId;
  /** 32 raw id bytes. */
  readonly id: Uint8Array;
  readonly offset: number;
  /** Sealed length: nonce ‖ ciphertext(codec ‖ body) ‖ tag. */
  readonly length: number;
  /** Plaintext length after decompression. */
  readonly rawLength: number;
}

/** A pack's entries in two typed arrays instead of an object each: `ids` (32 bytes per entry)
 *  and `meta` (type, offset, length, raw length per entry). How seal workers send them, and how
 *  a writer holds the entries of packs not yet in an index file (~50 bytes each, not ~250). */
export interface CompactEntries {
  readonly ids: Uint8Array;
  readonly meta: Uint32Array;
}

/** `entries` as CompactEntries (copies the ids). */
export function compactEntries(entries: readonly PackEntry[]): { ids: Uint8Array<ArrayBuffer>; meta: Uint32Array<ArrayBuffer> } {
  const ids = new Uint8Array(entries.length * ID_BYTES);
  const meta = new Uint32Array(entries.length * 4);
  // a loop, not forEach: a callback made per call was compiled again for each pack
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    ids.set(e.id, i * ID_BYTES);
    meta[4 * i] = e.type;
    meta[4 * i + 1] = e.offset;
    meta[4 * i + 2] = e.length;
    meta[4 * i + 3] = e.rawLength;
  }
  return { ids, meta };
}

/** The entries of CompactEntries (their ids are views of `c.ids`). */
export function expandEntries(c: CompactEntries): PackEntry[] {
  const entries: PackEntry[] = [];
  for (let i = 0; i < c.meta.length / 4; i++) {
    entries.push({ type: c.meta[4 * i]! as BlobTypeId, id: c.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), offset: c.meta[4 * i + 1]!, length: c.meta[4 * i + 2]!, rawLength: c.meta[4 * i + 3]! });
  }
  return entries;
}

/** Pack layout, format v1 (docs/format.md): a 24-byte preamble (magic "CRNP", version, 3 zero
 *  bytes, 16-byte salt), the sealed blobs, the sealed header, then the header's sealed length
 *  (u32 LE) and the magic "CRNE". */
export const PACK_PREAMBLE_BYTES = 24;
/** Bytes after the sealed header. */
export const PACK_TRAILER_BYTES = 8;
/** Bytes per entry in a pack header or index file. */
export const ENTRY_BYTES = 1 + ID_BYTES + 4 + 4 + 4;
/** Salt bytes per pack. */
export const PACK_SALT_BYTES = 16;

const MAGIC = Buffer.from('CRNP', 'latin1');
const END_MAGIC = Buffer.from('CRNE', 'latin1');
const VERSION = 1;
const HEADER_AAD = Buffer.from('cairn pack header v1');

/** The key that seals the blobs and header of the pack with `salt`. */
export function packKey(dataKey: Uint8Array, salt: Uint8Array): Buffer {
  return subkey(dataKey, salt, 'cairn pack v1');
}

/** The associated data that binds a sealed blob to its type and id, so a blob cannot be swapped
 *  for another inside or across packs without open() failing. */
export function blobAad(type: BlobTypeId, id: Uint8Array): Buffer {
  return blobAadInto(Buffer.allocUnsafe(BLOB_AAD_BYTES), type, id);
}

/** The length of a blob's associated data. */
export const BLOB_AAD_BYTES = 1 + ID_BYTES;

/** blobAad() written into `out` (BLOB_AAD_BYTES long), which it returns. */
export function blobAadInto<T extends Uint8Array>(out: T, type: BlobTypeId, id: Uint8Array): T {
  out[0] = type;
  out.set(id, 1);
  return out;
}

/** The preamble of a new pack. */
export function packPreamble(salt: Uint8Array): Buffer {
  const b = Buffer.alloc(PACK_PREAMBLE_BYTES);
  MAGIC.copy(b, 0);
  b[4] = VERSION;
  b.set(salt, 8);
  return b;
}

/** Writes entries in the binary layout shared by pack headers and index files. */
export function writeEntries(entries: readonly PackEntry[], out: Buffer, at: number): number {
  let o = at;
  for (const e of entries) {
    out[o] = e.type;
    out.set(e.id, o + 1);
    out.writeUInt32LE(e.offset, o + 33);
    out.writeUInt32LE(e.length, o + 37);
    out.writeUInt32LE(e.rawLength, o + 41);
    o += ENTRY_BYTES;
  }
  return o;
}

/** writeEntries() of CompactEntries, without an object per entry. */
export function writeCompactEntries(c: CompactEntries, out: Buffer, at: number): number {
  let o = at;
  for (let i = 0; i < c.meta.length / 4; i++) {
    out[o] = c.meta[4 * i]!;
    out.set(c.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), o + 1);
    out.writeUInt32LE(c.meta[4 * i + 1]!, o + 33);
    out.writeUInt32LE(c.meta[4 * i + 2]!, o + 37);
    out.writeUInt32LE(c.meta[4 * i + 3]!, o + 41);
    o += ENTRY_BYTES;
  }
  return o;
}

/** Reads `count` entries written by writeEntries. */
export function readEntries(buf: Uint8Array, at: number, count: number): PackEntry[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (at + count * ENTRY_BYTES > b.length) throw new IntegrityError('entry table is truncated');
  const out: PackEntry[] = [];
  for (let i = 0, o = at; i < count; i++, o += ENTRY_BYTES) {
    const type = b[o]!;
    if (type !== BlobType.data && type !== BlobType.tree) throw new IntegrityError(`unknown blob type ${type}`);
    out.push({ type: type as BlobTypeId, id: b.subarray(o + 1, o + 33), offset: b.readUInt32LE(o + 33), length: b.readUInt32LE(o + 37), rawLength: b.readUInt32LE(o + 41) });
  }
  return out;
}

/** The sealed header and trailer that end a pack whose blobs are `entries`. */
export function packFooter(key: Uint8Array, entries: readonly PackEntry[], random: RandomBytes): Buffer {
  const plain = Buffer.allocUnsafe(4 + entries.length * ENTRY_BYTES);
  plain.writeUInt32LE(entries.length, 0);
  writeEntries(entries, plain, 4);
  const sealed = sealParts(key, [plain], random, HEADER_AAD);
  const trailer = Buffer.alloc(PACK_TRAILER_BYTES);
  trailer.writeUInt32LE(sealed.length, 0);
  END_MAGIC.copy(trailer, 4);
  return Buffer.concat([sealed, trailer]);
}

/** The salt of a pack, from its preamble. */
export function packSalt(preamble: Uint8Array): Uint8Array {
  if (preamble.length < PACK_PREAMBLE_BYTES || !MAGIC.equals(preamble.subarray(0, 4))) throw new IntegrityError('not a cairn pack (bad magic)');
  if (preamble[4] !== VERSION) throw new IntegrityError(`pack has format version ${preamble[4]}, this cairn reads ${VERSION}`);
  return preamble.subarray(8, 8 + PACK_SALT_BYTES);
}

/** Where the sealed header of a pack of `packBytes` sits, from its last 8 bytes. */
export function headerRange(trailer: Uint8Array, packBytes: number): { offset: number; length: number } {
  const t = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (t.length !== PACK_TRAILER_BYTES || !END_MAGIC.equals(t.subarray(4))) throw new IntegrityError('pack trailer is damaged');
  const length = t.readUInt32LE(0);
  const offset = packBytes - PACK_TRAILER_BYTES - length;
  if (offset < PACK_PREAMBLE_BYTES) throw new IntegrityError('pack header length is out of range');
  return { offset, length };
}

/** Opens a pack's sealed header and returns its entries, checked to lie inside the blob area. */
export function readPackHeader(key: Uint8Array, sealedHeader: Uint8Array, headerOffset: number): PackEntry[] {
  const plain = open(key, sealedHeader, HEADER_AAD);
  const count = plain.readUInt32LE(0);
  if (plain.length !== 4 + count * ENTRY_BYTES) throw new IntegrityError('pack header has the wrong length');
  const entries = readEntries(plain, 4, count);
  for (const e of entries) {
    if (e.offset < PACK_PREAMBLE_BYTES || e.offset + e.length > headerOffset) throw new IntegrityError('pack header points outside the pack');
  }
  return entries;
}
