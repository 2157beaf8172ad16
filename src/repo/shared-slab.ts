// A global in Node; @types/node 20 leaves it to TypeScript's lib.dom, which cairn does not load.
// The one constructor used here:
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: true }) => { readonly buffer: SharedArrayBuffer } };

/** A slab's unit of allocation: a run of them holds one batch. */
export const GRANULE_BYTES = 64 * 1024;

/**
 * Fixed memory shared with worker threads and lent out in runs of 64 KiB granules, first fit: the
 * main thread writes a batch into a run, a worker reads it in place, and the run is given back
 * when the worker answers. Nothing is allocated or freed per batch, so a backup's chunks (2.9 GB
 * of them on the benchmark, 0.5-8 MiB each) no longer pass through malloc: a fresh buffer per
 * chunk, freed by whichever GC came next, left the main thread's malloc heap with 30-40 MiB of
 * free holes it never returned (docs/decisions.md §34).
 *
 * The memory is a shared WebAssembly.Memory's buffer: V8 maps it on its own, outside malloc's
 * arenas, and only the pages ever written count towards RSS.
 */
export class SharedSlab {
  readonly buffer: SharedArrayBuffer;
  /** 1 for each granule lent out. */
  readonly #taken: Uint8Array;
  #takenCount = 0;

  constructor(bytes: number) {
    const granules = Math.ceil(bytes / GRANULE_BYTES);
    if (!(granules >= 1)) throw new RangeError(`slab size must be > 0, got ${bytes}`);
    // one wasm page is one granule (64 KiB)
    this.buffer = new WebAssembly.Memory({ initial: granules, maximum: granules, shared: true }).buffer;
    this.#taken = new Uint8Array(granules);
  }

  /** Bytes lent out (whole granules). */
  get bytesTaken(): number {
    return this.#takenCount * GRANULE_BYTES;
  }

  /** Lends out the first free run of at least `n` bytes (n > 0) and returns its offset, or -1
   *  when no run is free that long. */
  take(n: number): number {
    const need = Math.ceil(n / GRANULE_BYTES);
    const taken = this.#taken;
    let run = 0;
    for (let g = 0; g < taken.length; g++) {
      if (taken[g] === 1) {
        run = 0;
        continue;
      }
      if (++run === need) {
        const first = g - need + 1;
        taken.fill(1, first, g + 1);
        this.#takenCount += need;
        return first * GRANULE_BYTES;
      }
    }
    return -1;
  }

  /** Gives back the run of `n` bytes at `at` (from take), keeping its first `keep` bytes lent
   *  out: a batch that closes short of what it took keeps only what it holds. */
  release(at: number, n: number, keep = 0): void {
    const first = at / GRANULE_BYTES + Math.ceil(keep / GRANULE_BYTES);
    const end = at / GRANULE_BYTES + Math.ceil(n / GRANULE_BYTES);
    for (let g = first; g < end; g++) {
      if (this.#taken[g] !== 1) throw new Error(`slab granule ${g} given back but not lent out`);
      this.#taken[g] = 0;
    }
    this.#takenCount -= Math.max(0, end - first);
  }

  /** A view of `n` bytes at `at`. */
  view(at: number, n: number): Buffer {
    return Buffer.from(this.buffer, at, n);
  }
}
