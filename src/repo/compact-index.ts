import { grownTo } from '../core/growable.js';
import { ID_BYTES, toHex } from '../core/ids.js';
import { ENTRY_BYTES } from '../core/pack-format.js';
import { IdSet } from './id-set.js';
import type { BlobId, PackId } from '../core/ids.js';
import type { BlobTypeId, CompactEntries, PackEntry } from '../core/pack-format.js';

/** Where one blob is stored. */
export interface BlobLocation {
  readonly type: BlobTypeId;
  readonly packId: PackId;
  readonly salt: Uint8Array;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
}

const INITIAL_CAPACITY = 1024;

/**
 * The in-memory index: blob id → pack, offset, length, raw length, type. Struct-of-arrays in
 * typed arrays, by the rows of an IdSet (the ids and an open-addressing table keyed by their
 * first 32 bits): 32 + 4×4 + 1 = 49 bytes per blob plus a power-of-two table of 4-byte slots
 * at a load ≤ 0.7. loadIndex reserves the exact count, which keeps an index
 * loaded from disk at 55–61 bytes per blob (budget: 64; measured in
 * test/repo/compact-index.test.ts); blobs added later grow the arrays by 1.5×.
 * The first location recorded for an id wins; later duplicates (the same blob uploaded twice by
 * a crashed run or a second agent) are ignored. Not safe for concurrent mutation across threads.
 */
export class CompactIndex {
  /** The ids, and the row of each: the columns below are by row. */
  readonly #ids = new IdSet(INITIAL_CAPACITY);
  #pack = new Uint32Array(INITIAL_CAPACITY);
  #offset = new Uint32Array(INITIAL_CAPACITY);
  #length = new Uint32Array(INITIAL_CAPACITY);
  #rawLength = new Uint32Array(INITIAL_CAPACITY);
  #type = new Uint8Array(INITIAL_CAPACITY);
  readonly #packIds: PackId[] = [];
  readonly #salts: Uint8Array[] = [];
  readonly #packNumber = new Map<string, number>();

  /** Number of distinct blobs. */
  get size(): number {
    return this.#ids.size;
  }

  /** Number of packs known. */
  get packCount(): number {
    return this.#packIds.length;
  }

  /** Bytes held by the typed arrays (for the per-blob budget). */
  get arrayBytes(): number {
    return this.#ids.arrayBytes + this.#pack.byteLength * 4 + this.#type.byteLength;
  }

  /** Makes room for `n` blobs in all without further growth. */
  reserve(n: number): void {
    this.#ids.reserve(n);
    if (n > this.#pack.length) this.#growColumns(n);
  }

  /** Records every blob of a pack. Returns how many were new. */
  addPack(packId: PackId, salt: Uint8Array, entries: readonly PackEntry[]): number {
    const p = this.#packOf(packId, salt);
    let added = 0;
    for (const e of entries) if (this.#insert(e.id, e.type, e.offset, e.length, e.rawLength, p)) added++;
    return added;
  }

  /** addPack() of entries in typed arrays (see CompactEntries), without an object per entry. */
  addCompactPack(packId: PackId, salt: Uint8Array, c: CompactEntries): number {
    const p = this.#packOf(packId, salt);
    let added = 0;
    const m = c.meta;
    for (let i = 0; i < m.length / 4; i++) {
      if (this.#insert(c.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), m[4 * i]! as BlobTypeId, m[4 * i + 1]!, m[4 * i + 2]!, m[4 * i + 3]!, p)) added++;
    }
    return added;
  }

  /** addPack() of a pack's entry records as an index file stores them (`count` records of
   *  ENTRY_BYTES, types already checked: decodeIndexTables), without an object or a view per
   *  entry: how an index is loaded (docs/decisions.md §42). */
  addPackTable(packId: PackId, salt: Uint8Array, table: Uint8Array, count: number): number {
    if (table.length < count * ENTRY_BYTES) throw new RangeError('entry table is shorter than its count');
    const p = this.#packOf(packId, salt);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let added = 0;
    for (let i = 0, o = 0; i < count; i++, o += ENTRY_BYTES) {
      const row = this.#ids.insertAt(table, o + 1);
      if (row < 0) continue;
      this.#setRow(row, table[o]! as BlobTypeId, view.getUint32(o + 33, true), view.getUint32(o + 37, true), view.getUint32(o + 41, true), p);
      added++;
    }
    return added;
  }

  /** The number of pack `packId`, recorded on first sight. */
  #packOf(packId: PackId, salt: Uint8Array): number {
    let p = this.#packNumber.get(packId);
    if (p === undefined) {
      p = this.#packIds.length;
      this.#packIds.push(packId);
      this.#salts.push(Uint8Array.from(salt));
      this.#packNumber.set(packId, p);
    }
    return p;
  }

  /** True when the blob with these 32 id bytes is indexed. */
  has(id: Uint8Array): boolean {
    return this.#ids.has(id);
  }

  /** Where the blob is, or undefined. */
  lookup(id: Uint8Array): BlobLocation | undefined {
    const i = this.#ids.rowOf(id);
    return i < 0 ? undefined : this.at(i);
  }

  /** The row of the blob with these id bytes, or -1. A row names the blob for as long as this
   *  index lives (rows are never moved), so a caller may keep rows instead of locations. */
  rowOf(id: Uint8Array): number {
    return this.#ids.rowOf(id);
  }

  /** The location of the blob in `row` (see rowOf). */
  at(row: number): BlobLocation {
    const p = this.#pack[row]!;
    return { type: this.#type[row] as BlobTypeId, packId: this.#packIds[p]!, salt: this.#salts[p]!, offset: this.#offset[row]!, length: this.#length[row]!, rawLength: this.#rawLength[row]! };
  }

  /** The pack number (see at()), offset, stored length and raw length of the blob in `row`,
   *  without making an object. */
  packOf(row: number): number {
    return this.#pack[row]!;
  }

  offsetOf(row: number): number {
    return this.#offset[row]!;
  }

  lengthOf(row: number): number {
    return this.#length[row]!;
  }

  rawLengthOf(row: number): number {
    return this.#rawLength[row]!;
  }

  /** A copy of the id of the blob in `row`. */
  idOf(row: number): Uint8Array {
    return this.#ids.idAt(row).slice();
  }

  /** Every pack id known to the index. */
  packIds(): readonly PackId[] {
    return this.#packIds;
  }

  /** Every indexed blob, with its location. */
  *entries(): IterableIterator<{ id: BlobId } & BlobLocation> {
    for (let i = 0; i < this.#ids.size; i++) {
      const p = this.#pack[i]!;
      yield { id: toHex(this.#ids.idAt(i)) as BlobId, type: this.#type[i] as BlobTypeId, packId: this.#packIds[p]!, salt: this.#salts[p]!, offset: this.#offset[i]!, length: this.#length[i]!, rawLength: this.#rawLength[i]! };
    }
  }

  #insert(id: Uint8Array, type: BlobTypeId, offset: number, length: number, rawLength: number, pack: number): boolean {
    const i = this.#ids.insert(id);
    if (i < 0) return false;
    this.#setRow(i, type, offset, length, rawLength, pack);
    return true;
  }

  /** Fills the columns of a new row. */
  #setRow(i: number, type: BlobTypeId, offset: number, length: number, rawLength: number, pack: number): void {
    if (i >= this.#pack.length) this.#growColumns(Math.ceil(this.#pack.length * 1.5));
    this.#pack[i] = pack;
    this.#offset[i] = offset;
    this.#length[i] = length;
    this.#rawLength[i] = rawLength;
    this.#type[i] = type;
  }

  /** The columns grown to `cap` rows (large ones in place, see grownTo). */
  #growColumns(cap: number): void {
    this.#pack = grownTo(this.#pack, cap, Uint32Array);
    this.#offset = grownTo(this.#offset, cap, Uint32Array);
    this.#length = grownTo(this.#length, cap, Uint32Array);
    this.#rawLength = grownTo(this.#rawLength, cap, Uint32Array);
    this.#type = grownTo(this.#type, cap, Uint8Array);
  }
}
