/**
 * Buffers for batches sent to worker threads: each owns its ArrayBuffer (it is transferred) and
 * comes back with the worker's answer, and up to `keep` of them are kept for the next batches
 * (a fresh buffer per batch was gigabytes of garbage on a first backup). Used by the seal pool
 * and by restore's file-write pool.
 */
export class BatchBuffers {
  readonly batchBytes: number;
  readonly #keep: number;
  readonly #spare: ArrayBuffer[] = [];

  constructor(batchBytes: number, keep: number) {
    this.batchBytes = batchBytes;
    this.#keep = keep;
  }

  /** A buffer for at least `n` bytes: a kept one, or a new one of batchBytes (or of `n` when
   *  larger: those are few, and not kept). */
  take(n: number): Buffer {
    if (n > this.batchBytes) return Buffer.allocUnsafeSlow(n);
    const spare = this.#spare.pop();
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(this.batchBytes);
  }

  /** Keeps a buffer that came back, if it is of batchBytes and fewer than `keep` are kept. */
  giveBack(buf: ArrayBuffer): void {
    if (buf.byteLength === this.batchBytes && this.#spare.length < this.#keep) this.#spare.push(buf);
  }
}
