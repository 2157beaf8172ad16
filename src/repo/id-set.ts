import { grownTo } from '../core/growable.js';
import { ID_BYTES } from '../core/ids.js';

const EMPTY = -1;
/** Highest load of the table: linear probing stays short below 0.7. */
const MAX_LOAD = 0.7;
const INITIAL_ROWS = 1024;

/**
 * A set of blob ids (32 bytes each), each at a row: the ids in one typed array and an
 * open-addressing table of rows keyed by an id's first 32 bits (ids are keyed hashes, so those
 * bits are uniform), at a load of at most 0.7. Rows are handed out in order and never move; a
 * deleted id's row is taken again by a later one. CompactIndex keeps its columns by these rows
 * (and never deletes, so its rows are dense and in insertion order); a blob writer keeps the
 * blobs it knows alone here, where a Set of hex strings hashed each 64-character id on add and
 * again, from a new string, on delete (~1% of a first backup's main thread; §35). Large arrays
 * grow in place (grownTo); growth is 1.5x.
 */
export class IdSet {
  #ids: Uint8Array;
  #table: Int32Array;
  /** Rows freed by delete(), taken again before new ones. */
  readonly #free: number[] = [];
  /** Rows ever used: the next new row. */
  #rows = 0;
  #size = 0;

  constructor(initialRows = INITIAL_ROWS) {
    this.#ids = new Uint8Array(initialRows * ID_BYTES);
    this.#table = new Int32Array(tableSlots(initialRows)).fill(EMPTY);
  }

  /** Ids in the set. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held by the typed arrays. */
  get arrayBytes(): number {
    return this.#ids.byteLength + this.#table.byteLength;
  }

  /** Makes room for `n` ids in all without further growth. */
  reserve(n: number): void {
    if (n * ID_BYTES > this.#ids.length) this.#grow(n);
  }

  has(id: Uint8Array): boolean {
    return this.#table[this.#find(id, 0)] !== EMPTY;
  }

  /** The row of `id`, or -1. */
  rowOf(id: Uint8Array): number {
    return this.#table[this.#find(id, 0)]!;
  }

  /** The id at `row` (a view: valid until the set grows). */
  idAt(row: number): Uint8Array {
    return this.#ids.subarray(row * ID_BYTES, (row + 1) * ID_BYTES);
  }

  /** Adds `id` (copied); false when it was there already. */
  add(id: Uint8Array): boolean {
    return this.insert(id) >= 0;
  }

  /** Adds `id` (copied) and returns its row, or -1 when it was there already. */
  insert(id: Uint8Array): number {
    return this.insertAt(id, 0);
  }

  /** insert() of the id at `bytes[at..at + 32)`, without a view made of it. */
  insertAt(bytes: Uint8Array, at: number): number {
    if (at + ID_BYTES > bytes.length) throw new RangeError('an id is 32 bytes');
    let s = this.#find(bytes, at);
    if (this.#table[s] !== EMPTY) return -1;
    let row = this.#free.pop();
    if (row === undefined) {
      // grown before the row is taken: a rehash places every row taken so far
      if (this.#rows * ID_BYTES >= this.#ids.length) {
        this.#grow(Math.ceil((this.#rows + 1) * 1.5));
        s = this.#find(bytes, at);
      }
      row = this.#rows++;
    }
    const ids = this.#ids;
    const base = row * ID_BYTES;
    for (let k = 0; k < ID_BYTES; k++) ids[base + k] = bytes[at + k]!;
    this.#table[s] = row;
    this.#size++;
    return row;
  }

  /** Removes `id`; false when it was not there. */
  delete(id: Uint8Array): boolean {
    let s = this.#find(id, 0);
    const row = this.#table[s]!;
    if (row === EMPTY) return false;
    this.#free.push(row);
    this.#size--;
    // backward-shift deletion: move up each later entry of the run that may sit in the hole,
    // so every entry stays reachable from its home slot without tombstones
    const mask = this.#table.length - 1;
    for (let j = (s + 1) & mask; ; j = (j + 1) & mask) {
      const r = this.#table[j]!;
      if (r === EMPTY) break;
      const home = this.#home(this.#ids, r * ID_BYTES);
      // the entry at j stays when its home lies cyclically in (s, j]
      const stays = s <= j ? s < home && home <= j : s < home || home <= j;
      if (stays) continue;
      this.#table[s] = r;
      s = j;
    }
    this.#table[s] = EMPTY;
    return true;
  }

  /** The slot holding the id at `bytes[at..]`, or the empty slot where it would go. */
  #find(bytes: Uint8Array, at: number): number {
    const mask = this.#table.length - 1;
    const ids = this.#ids;
    for (let s = this.#home(bytes, at); ; s = (s + 1) & mask) {
      const r = this.#table[s]!;
      if (r === EMPTY) return s;
      const base = r * ID_BYTES;
      let eq = true;
      for (let k = 0; k < ID_BYTES; k++) {
        if (ids[base + k] !== bytes[at + k]) {
          eq = false;
          break;
        }
      }
      if (eq) return s;
    }
  }

  /** The home slot of the id at `bytes[at..]`. */
  #home(bytes: Uint8Array, at: number): number {
    return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) & (this.#table.length - 1);
  }

  /** Room for `rows` rows, and the table sized for them: a table sized to the rows in use (a
   *  load near 0.7 once full) made an index's lookups of absent ids 2x slower than one sized to
   *  its capacity (longer probe runs, each an id compared). */
  #grow(rows: number): void {
    this.#ids = grownTo(this.#ids, rows * ID_BYTES, Uint8Array);
    if (tableSlots(rows) > this.#table.length) this.#rehash(tableSlots(rows));
  }

  /** Rebuilds the table at `slots` slots, in place where it is large (see grownTo). */
  #rehash(slots: number): void {
    // the live rows: all of them when none was freed (as in an index), else those in the table
    const live = this.#free.length === 0 ? undefined : this.#table.filter((r) => r !== EMPTY);
    this.#table = grownTo(this.#table, slots, Int32Array).fill(EMPTY);
    if (live) for (const r of live) this.#place(r);
    else for (let r = 0; r < this.#rows; r++) this.#place(r);
  }

  #place(row: number): void {
    const mask = this.#table.length - 1;
    let s = this.#home(this.#ids, row * ID_BYTES);
    while (this.#table[s] !== EMPTY) s = (s + 1) & mask;
    this.#table[s] = row;
  }
}

function tableSlots(rows: number): number {
  let slots = 1;
  while (slots * MAX_LOAD < rows) slots *= 2;
  return slots;
}
