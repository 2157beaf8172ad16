/** Copies `src` into `dst` at `at` with libc's memcpy: for `dst` a view of shared memory (a
 *  slab's), or any array. V8's TypedArray.set() (and Buffer.copy, which calls it) copies into
 *  shared memory word by word with relaxed atomics: copying a backup's 2.9 GB of chunks into
 *  the slab that way took 2.7% of its cpu samples, twice what the same copy into unshared
 *  memory had taken. Buffer.fill with a buffer as long as the range is one native memcpy. */
export function copyInto(dst: Uint8Array, at: number, src: Uint8Array): void {
  if (src.length === 0) return;
  (Buffer.isBuffer(dst) ? dst : Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength)).fill(src, at, at + src.length);
}

let detachedOne = false;

/**
 * Detaches one empty buffer, once per thread, for code that will detach buffers (transfers to
 * and from worker threads, a WebAssembly memory that grows). V8 compiles typed-array code on
 * the assumption that no ArrayBuffer is ever detached, until one is: then every function
 * compiled on it is thrown away at once. A first backup's first detach came in its middle and
 * took ~50 optimized functions with it: compiling them again was ~0.4 s by --trace-opt's clock,
 * 0.7% of the backup's cpu (docs/decisions.md §36). Made at the start, it costs nothing, since
 * nothing hot is compiled yet.
 */
export function expectDetachedBuffers(): void {
  if (detachedOne) return;
  detachedOne = true;
  const empty = new ArrayBuffer(0);
  structuredClone(empty, { transfer: [empty] });
}
