import { grownTo } from '../core/growable.js';
import { ID_BYTES } from '../core/ids.js';

const EMPTY = -1;
/** Highest load of the table: linear probing stays short below 0.7. */
const MAX_LOAD = 0.7;
const INITIAL_ROWS = 1024;

/**
 * A set of blob ids (32 bytes each) that grows and shrinks: the ids in typed arrays and an
 * open-addressing table keyed by an id's first 32 bits, as in CompactIndex (ids are keyed
 * hashes, so those bits are uniform), with deletion. What a blob writer keeps of the blobs it
 * has taken and not yet stored: a Set of hex strings hashed each 64-character id on add and
 * again, from a new string, on delete (~1% of a first backup's main thread; §35).
 */
export class IdSet {
  #ids = new Uint8Array(INITIAL_ROWS * ID_BYTES);
  #table = new Int32Array(tableSlots(INITIAL_ROWS)).fill(EMPTY);
  /** Rows freed by delete(), taken again before new ones. */
  readonly #free: number[] = [];
  /** Rows ever used: the next new row. */
  #rows = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(id: Uint8Array): boolean {
    return this.#table[this.#find(id)] !== EMPTY;
  }

  /** Adds `id` (copied); false when it was there already. */
  add(id: Uint8Array): boolean {
    let s = this.#find(id);
    if (this.#table[s] !== EMPTY) return false;
    if (this.#size + 1 > this.#table.length * MAX_LOAD) {
      this.#rehash(this.#table.length * 2);
      s = this.#find(id);
    }
    let row = this.#free.pop();
    if (row === undefined) {
      row = this.#rows++;
      if (row * ID_BYTES >= this.#ids.length) this.#ids = grownTo(this.#ids, 2 * this.#ids.length, Uint8Array);
    }
    this.#ids.set(id.subarray(0, ID_BYTES), row * ID_BYTES);
    this.#table[s] = row;
    this.#size++;
    return true;
  }

  /** Removes `id`; false when it was not there. */
  delete(id: Uint8Array): boolean {
    let s = this.#find(id);
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

  /** The slot holding `id`, or the empty slot where it would go. */
  #find(id: Uint8Array): number {
    const mask = this.#table.length - 1;
    const ids = this.#ids;
    for (let s = this.#home(id, 0); ; s = (s + 1) & mask) {
      const r = this.#table[s]!;
      if (r === EMPTY) return s;
      const base = r * ID_BYTES;
      let k = 0;
      while (k < ID_BYTES && ids[base + k] === id[k]) k++;
      if (k === ID_BYTES) return s;
    }
  }

  /** The home slot of the id at `bytes[at..]`. */
  #home(bytes: Uint8Array, at: number): number {
    return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) & (this.#table.length - 1);
  }

  #rehash(slots: number): void {
    const old = this.#table;
    this.#table = new Int32Array(slots).fill(EMPTY);
    const mask = slots - 1;
    for (const r of old) {
      if (r === EMPTY) continue;
      let s = this.#home(this.#ids, r * ID_BYTES);
      while (this.#table[s] !== EMPTY) s = (s + 1) & mask;
      this.#table[s] = r;
    }
  }
}

function tableSlots(rows: number): number {
  let slots = 1;
  while (slots * MAX_LOAD < rows) slots *= 2;
  return slots;
}
