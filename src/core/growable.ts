/** The typed arrays grownTo() grows. */
export type GrowableArray = Uint8Array | Uint32Array | Int32Array | Float64Array;

/** A typed array constructor, of a fixed length or over a whole buffer. */
export interface GrowableConstructor<T extends GrowableArray> {
  new (length: number): T;
  new (buffer: ArrayBuffer): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** ES2024's resizable ArrayBuffer (Node 20's V8 has it; TypeScript's ES2023 lib does not). */
interface ResizableArrayBuffer extends ArrayBuffer {
  readonly resizable?: boolean;
  readonly maxByteLength?: number;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;

/** Arrays from this size on grow in place: smaller ones are copied (an index per test, per
 *  snapshot listing, needs no address space reserved). */
const IN_PLACE_FROM_BYTES = 1024 * 1024;
/** Address space reserved for an array that grows in place; past it, it is copied. */
const MAX_IN_PLACE_BYTES = 2 ** 32;

/**
 * Returns `a` grown to `length` items, its items kept and the new ones zero. A large array
 * grows in place: its buffer is a resizable ArrayBuffer, which V8 maps outside malloc with its
 * maximum size reserved as address space, and the array tracks the buffer's length, so growing
 * copies nothing and leaves no garbage. Growing by copies did both: the old array stayed until
 * a full GC, and the new one's unused tail was zeroed, so resident, at once; together ~20 MiB of
 * a 150k-file restore's peak, ~8 MiB of a backup's (docs/decisions.md §34). Element access on
 * such an array is ~2x slower in optimized code, which index lookups and a restore's plan do
 * not notice. Returns `a` itself when it is long enough or grew in place.
 */
export function grownTo<T extends GrowableArray>(a: T, length: number, make: GrowableConstructor<T>): T {
  if (length <= a.length) return a;
  const bytes = length * make.BYTES_PER_ELEMENT;
  const buf = a.buffer as ResizableArrayBuffer;
  if (buf.resizable === true && a.byteOffset === 0 && bytes <= buf.maxByteLength!) {
    buf.resize(bytes);
    // a length-tracking view (made below): it covers the whole buffer now
    if (a.length === length) return a;
  }
  let b: T | undefined;
  if (bytes >= IN_PLACE_FROM_BYTES && bytes <= MAX_IN_PLACE_BYTES) {
    try {
      b = new make(new ResizableArrayBuffer(bytes, { maxByteLength: MAX_IN_PLACE_BYTES }));
    } catch {
      // no address space for it (a ulimit -v): a copy as below
    }
  }
  b ??= new make(length);
  b.set(a);
  return b;
}
