import { expectDetachedBuffers } from '../core/bytes.js';
import { SharedSlab } from './shared-slab.js';

/** Where a batch's blobs are written: a run of the slab (`at` its offset), or, when the slab had
 *  no room, a buffer of its own (`at` -1), transferred to the worker and back. */
export interface BatchRoom {
  readonly buf: Buffer;
  readonly at: number;
}

/**
 * Memory for batches sent to worker threads, as the seal pool and restore's file-write pool use
 * it: a SharedSlab the workers read in place, and for a batch the slab has no run for, a buffer
 * of its own that is transferred and comes back with the worker's answer. Up to `keep` such
 * buffers of batchBytes are kept for the next batches (a fresh buffer per batch was gigabytes
 * of garbage on a first backup), and up to `keepLarge` larger ones.
 */
export class BatchBuffers {
  readonly batchBytes: number;
  readonly #slab: SharedSlab;
  readonly #keep: number;
  readonly #keepLarge: number;
  readonly #spare: ArrayBuffer[] = [];
  /** Larger buffers kept, the largest last. */
  readonly #large: ArrayBuffer[] = [];

  /** `keepLarge`: how many buffers larger than batchBytes to keep too (the largest that came
   *  back), for a caller whose larger requests recur. */
  constructor(batchBytes: number, slabBytes: number, keep: number, keepLarge = 0) {
    // a buffer of its own is transferred: detached here
    expectDetachedBuffers();
    this.batchBytes = batchBytes;
    this.#slab = new SharedSlab(slabBytes);
    this.#keep = keep;
    this.#keepLarge = keepLarge;
  }

  /** The slab's memory, for the workers' workerData. */
  get slab(): SharedArrayBuffer {
    return this.#slab.buffer;
  }

  /** Bytes of the slab lent out to batches. */
  get slabBytesInUse(): number {
    return this.#slab.bytesTaken;
  }

  /** Room for a batch whose first blob is `n` bytes: a slab run of batchBytes (or of `n` when
   *  larger), else a buffer of its own (see take). */
  room(n: number): BatchRoom {
    const want = Math.max(this.batchBytes, n);
    const at = this.#slab.take(want);
    return at >= 0 ? { buf: this.#slab.view(at, want), at } : { buf: this.take(n), at: -1 };
  }

  /** A batch closed holding `used` bytes: a slab run keeps only those, and its view is cut to
   *  them (returned); a buffer of its own is returned whole. */
  shrink(room: BatchRoom, used: number): Buffer {
    if (room.at < 0) return room.buf;
    this.#slab.release(room.at, room.buf.length, used);
    return room.buf.subarray(0, used);
  }

  /** A batch of `used` bytes is done with: its slab run goes back, or its own buffer, `buf`
   *  (which came back from the worker), is kept as giveBack says. */
  release(at: number, used: number, buf: ArrayBufferLike | undefined): void {
    if (at >= 0) this.#slab.release(at, used);
    else if (buf) this.giveBack(buf as ArrayBuffer);
  }

  /** A buffer for at least `n` bytes: a kept one, or a new one of batchBytes (or of `n` when
   *  larger, rounded up to a multiple of batchBytes when larger ones are kept). */
  take(n: number): Buffer {
    if (n > this.batchBytes) {
      const i = this.#large.findIndex((b) => b.byteLength >= n);
      if (i >= 0) return Buffer.from(this.#large.splice(i, 1)[0]!);
      return Buffer.allocUnsafeSlow(this.#keepLarge > 0 ? Math.ceil(n / this.batchBytes) * this.batchBytes : n);
    }
    const spare = this.#spare.pop();
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(this.batchBytes);
  }

  /** Keeps a buffer that came back: one of batchBytes if fewer than `keep` are kept, a larger
   *  one if fewer than `keepLarge` are, or in place of a smaller one. */
  giveBack(buf: ArrayBuffer): void {
    if (buf.byteLength === this.batchBytes) {
      if (this.#spare.length < this.#keep) this.#spare.push(buf);
      return;
    }
    if (buf.byteLength < this.batchBytes || this.#keepLarge === 0) return;
    if (this.#large.length >= this.#keepLarge) {
      if (this.#large[0]!.byteLength >= buf.byteLength) return;
      this.#large.shift();
    }
    this.#large.push(buf);
    this.#large.sort((a, b) => a.byteLength - b.byteLength);
  }
}
