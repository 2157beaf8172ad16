/**
 * Buffers for batches sent to worker threads: each owns its ArrayBuffer (it is transferred) and
 * comes back with the worker's answer, and up to `keep` of them are kept for the next batches
 * (a fresh buffer per batch was gigabytes of garbage on a first backup). Used by the seal pool
 * and by restore's file-write pool.
 */
export class BatchBuffers {
  readonly batchBytes: number;
  readonly #keep: number;
  readonly #keepLarge: number;
  readonly #spare: ArrayBuffer[] = [];
  /** Larger buffers kept, the largest last. */
  readonly #large: ArrayBuffer[] = [];

  /** `keepLarge`: how many buffers larger than batchBytes to keep too (the largest that came
   *  back), for a caller whose larger requests recur: a restore's file writers get every sealed
   *  blob larger than a batch (a 150k-file restore had 23, 40 MiB in all, each a new buffer left
   *  to V8's next GC). */
  constructor(batchBytes: number, keep: number, keepLarge = 0) {
    this.batchBytes = batchBytes;
    this.#keep = keep;
    this.#keepLarge = keepLarge;
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
