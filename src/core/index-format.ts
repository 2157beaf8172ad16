import { IntegrityError } from './errors.js';
import { ID_BYTES, fromHex, toHex } from './ids.js';
import type { IndexId, PackId } from './ids.js';
import { BlobType, ENTRY_BYTES, PACK_SALT_BYTES, readEntries, writeCompactEntries, writeEntries } from './pack-format.js';
import type { CompactEntries, PackEntry } from './pack-format.js';

/** One pack as an index file lists it: its id, salt and blobs. */
export interface IndexedPack {
  readonly packId: PackId;
  readonly salt: Uint8Array;
  readonly entries: readonly PackEntry[];
}

/** One pack with its entries in typed arrays (see CompactEntries): how a writer holds packs
 *  until it lists them in an index file. */
export interface CompactIndexedPack extends CompactEntries {
  readonly packId: PackId;
  readonly salt: Uint8Array;
}

/** The plaintext of one index file: packs it describes and index files it replaces (prune). */
export interface IndexFileContent {
  readonly packs: readonly IndexedPack[];
  readonly supersedes: readonly IndexId[];
}

/** One pack of an index file as it is stored: `count` entry records of ENTRY_BYTES each in
 *  `table` (a view of the file's bytes; types checked), read without an object per entry. */
export interface IndexedPackTable {
  readonly packId: PackId;
  readonly salt: Uint8Array;
  readonly count: number;
  readonly table: Uint8Array;
}

/** An index file as decodeIndexTables reads it. */
export interface IndexFileTables {
  readonly packs: readonly IndexedPackTable[];
  readonly supersedes: readonly IndexId[];
}

/** What encodeIndexFile takes: IndexFileContent, each pack's entries as objects or compact. A
 *  backup's index writes list ~50k blobs each: an object per entry was ~8 MiB of garbage at
 *  each, the last at a backup's peak (docs/decisions.md §34). */
export interface IndexFileInput {
  readonly packs: readonly (IndexedPack | CompactIndexedPack)[];
  readonly supersedes: readonly IndexId[];
}

/** Entries in a pack of either form. */
const entryCount = (p: IndexedPack | CompactIndexedPack): number => ('entries' in p ? p.entries.length : p.meta.length / 4);

const MAGIC = Buffer.from('CRNI', 'latin1');
const VERSION = 1;

/** Encodes index file content as binary (docs/format.md): fixed-width records, so a million
 *  blobs load in tens of milliseconds without a JSON parse. */
export function encodeIndexFile(content: IndexFileInput): Buffer {
  let size = 8 + 4 + content.supersedes.length * ID_BYTES + 4;
  for (const p of content.packs) size += ID_BYTES + PACK_SALT_BYTES + 4 + entryCount(p) * ENTRY_BYTES;
  const out = Buffer.alloc(size);
  MAGIC.copy(out, 0);
  out[4] = VERSION;
  let o = 8;
  out.writeUInt32LE(content.supersedes.length, o);
  o += 4;
  for (const id of content.supersedes) o += fromHex(id).copy(out, o);
  out.writeUInt32LE(content.packs.length, o);
  o += 4;
  for (const p of content.packs) {
    o += fromHex(p.packId).copy(out, o);
    if (p.salt.length !== PACK_SALT_BYTES) throw new RangeError('pack salt must be 16 bytes');
    out.set(p.salt, o);
    o += PACK_SALT_BYTES;
    out.writeUInt32LE(entryCount(p), o);
    o = 'entries' in p ? writeEntries(p.entries, out, o + 4) : writeCompactEntries(p, out, o + 4);
  }
  return out;
}

/** Decodes encodeIndexFile's output; rejects with IntegrityError on any inconsistency. */
export function decodeIndexFile(buf: Uint8Array): IndexFileContent {
  const { packs, supersedes } = decodeIndexTables(buf);
  return { packs: packs.map((p) => ({ packId: p.packId, salt: p.salt, entries: readEntries(p.table, 0, p.count) })), supersedes };
}

/** decodeIndexFile with each pack's entries left as their records: how an index is loaded. An
 *  object and a Buffer view per entry were ~60% of loading 147k blobs, and most of its garbage
 *  (docs/decisions.md §42). */
export function decodeIndexTables(buf: Uint8Array): IndexFileTables {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 16 || !MAGIC.equals(b.subarray(0, 4))) throw new IntegrityError('not a cairn index (bad magic)');
  if (b[4] !== VERSION) throw new IntegrityError(`index has format version ${b[4]}, this cairn reads ${VERSION}`);
  let o = 8;
  const need = (n: number): void => {
    if (o + n > b.length) throw new IntegrityError('index file is truncated');
  };
  need(4);
  const nSup = b.readUInt32LE(o);
  o += 4;
  need(nSup * ID_BYTES);
  const supersedes: IndexId[] = [];
  for (let i = 0; i < nSup; i++, o += ID_BYTES) supersedes.push(toHex(b.subarray(o, o + ID_BYTES)) as IndexId);
  need(4);
  const nPacks = b.readUInt32LE(o);
  o += 4;
  const packs: IndexedPackTable[] = [];
  for (let i = 0; i < nPacks; i++) {
    need(ID_BYTES + PACK_SALT_BYTES + 4);
    const packId = toHex(b.subarray(o, o + ID_BYTES)) as PackId;
    const salt = b.subarray(o + ID_BYTES, o + ID_BYTES + PACK_SALT_BYTES);
    o += ID_BYTES + PACK_SALT_BYTES;
    const count = b.readUInt32LE(o);
    o += 4;
    need(count * ENTRY_BYTES);
    for (let e = 0; e < count; e++) {
      const type = b[o + e * ENTRY_BYTES]!;
      if (type !== BlobType.data && type !== BlobType.tree) throw new IntegrityError(`unknown blob type ${type}`);
    }
    packs.push({ packId, salt, count, table: b.subarray(o, o + count * ENTRY_BYTES) });
    o += count * ENTRY_BYTES;
  }
  if (o !== b.length) throw new IntegrityError('index file has trailing bytes');
  return { packs, supersedes };
}
