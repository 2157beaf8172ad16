// FastCDC's gear-hash scan as a small WebAssembly function, over a read buffer that lives in the
// function's own memory (GearScanMemory). The same loop in JavaScript (FastCdcChunker) runs at
// ~1.5 GB/s here, held back by a bounds check on every table and word load; in WebAssembly the
// loads need none (the engine guards the memory with unmapped pages), and it runs at ~2.6 GB/s:
// ~0.4 s less of a 2.9 GB first backup's main thread (docs/decisions.md §36).

import { expectDetachedBuffers } from './bytes.js';

// A global in Node; @types/node 20 leaves it to TypeScript's lib.dom, which cairn does not load.
// The parts used here:
declare const WebAssembly: {
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
};
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

const PAGE_BYTES = 64 * 1024;
/** The gear table (256 int32) at the start of the memory; the data region follows. */
const TABLE_BYTES = 1024;

/**
 * The module, assembled here (it is 301 bytes: no toolchain, no binary in the repository). In
 * the text format:
 *
 *   (import "m" "mem" (memory 1))
 *   (global $h (export "h") (mut i32) (i32.const 0))
 *   (func (export "scan") (param $i i32) (param $end i32) (param $h i32) (param $mask i32)
 *                         (result i32) (local $x i32)
 *     ;; four bytes per 32-bit load (little-endian in WebAssembly on every host), table entry
 *     ;; of byte k at ((x >>> 8k) & 255) * 4
 *     (block (loop
 *       (br_if 1 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)))
 *       (local.set $x (i32.load (local.get $i)))
 *       byte 0: h = (h << 1) + gear[x & 255];          cut here: return i + 1 (h in $h)
 *       byte 1: h = (h << 1) + gear[(x >>> 8) & 255];  return i + 2
 *       byte 2: h = (h << 1) + gear[(x >>> 16) & 255]; return i + 3
 *       byte 3: h = (h << 1) + gear[x >>> 24]; i += 4; loop while h & mask, else return i
 *     ))
 *     ;; the last 0-3 bytes one at a time, the same way
 *     (block (loop ...))
 *     (global.set $h (local.get $h)) (i32.const -1))
 *
 * A cut is after the first byte whose hash has no bit of `mask` set; -1 when there is none
 * before `end`, and the hash so far is left in the global `h`.
 */
function gearScanModule(): Uint8Array {
  const I32 = 0x7f;
  const op = {
    block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br_if: 0x0d, return: 0x0f, void: 0x40,
    localGet: 0x20, localSet: 0x21, localTee: 0x22, globalSet: 0x24,
    load: 0x28, load8u: 0x2d, const: 0x41, eqz: 0x45, gtU: 0x4b, geU: 0x4f,
    add: 0x6a, and: 0x71, shl: 0x74, shrU: 0x76,
  } as const;
  const [I, END, H, MASK, X] = [0, 1, 2, 3, 4];
  /** i32.const of a small constant (signed LEB128). */
  const k = (n: number): number[] => {
    const out: number[] = [op.const];
    for (;;) {
      const byte = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
      out.push(byte | 0x80);
    }
  };
  const get = (l: number): number[] => [op.localGet, l];
  const load = [op.load, 0, 0]; // align 1, offset 0
  /** h = (h << 1) + the table entry at `index` (bytes computing the entry's address). */
  const step = (index: number[]): number[] => [...get(H), ...k(1), op.shl, ...index, ...load, op.add];
  /** After a step: when the hash has no bit of the mask, store it and return i + n. */
  const cutReturns = (n: number): number[] => [op.localTee, H, ...get(MASK), op.and, op.eqz, op.if, op.void, ...get(H), op.globalSet, 0, ...get(I), ...k(n), op.add, op.return, op.end];
  const byteOf = (shift: number): number[] => [...get(X), ...k(shift), op.shrU, ...k(1020), op.and];
  const body = [
    1, 1, I32, // one local: $x
    op.block, op.void, op.loop, op.void,
    ...get(I), ...k(4), op.add, ...get(END), op.gtU, op.br_if, 1,
    ...get(I), ...load, op.localSet, X,
    ...step([...get(X), ...k(255), op.and, ...k(2), op.shl]), ...cutReturns(1),
    ...step(byteOf(6)), ...cutReturns(2),
    ...step(byteOf(14)), ...cutReturns(3),
    ...step(byteOf(22)), op.localSet, H,
    ...get(I), ...k(4), op.add, op.localSet, I,
    ...get(H), ...get(MASK), op.and, op.br_if, 0,
    ...get(H), op.globalSet, 0, ...get(I), op.return,
    op.end, op.end,
    op.block, op.void, op.loop, op.void,
    ...get(I), ...get(END), op.geU, op.br_if, 1,
    ...step([...get(I), op.load8u, 0, 0, ...k(2), op.shl]), op.localSet, H,
    ...get(I), ...k(1), op.add, op.localSet, I,
    ...get(H), ...get(MASK), op.and, op.br_if, 0,
    ...get(H), op.globalSet, 0, ...get(I), op.return,
    op.end, op.end,
    ...get(H), op.globalSet, 0, ...k(-1),
    op.end,
  ];
  const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];
  /** `bytes` after their length (unsigned LEB128): a section's contents, a function body. */
  const sized = (bytes: number[]): number[] => {
    const len: number[] = [];
    let n = bytes.length;
    do {
      len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>>= 7;
    } while (n > 0);
    return [...len, ...bytes];
  };
  const section = (id: number, bytes: number[]): number[] => [id, ...sized(bytes)];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 4, I32, I32, I32, I32, 1, I32]), // type 0: (i32 i32 i32 i32) -> i32
    ...section(2, [1, ...name('m'), ...name('mem'), 0x02, 0x00, 1]), // import memory, min 1 page
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(6, [1, I32, 1, ...k(0), op.end]), // global 0: mut i32 = 0
    ...section(7, [2, ...name('scan'), 0x00, 0, ...name('h'), 0x03, 0]), // exports
    ...section(10, [1, ...sized(body)]), // code: one function body
  ]);
}

let compiled: object | undefined;

/**
 * A read buffer in WebAssembly memory, with the gear table in front of it, and the scan over
 * it. Growing it keeps its contents in place (no copy), and gives a new view: the old one is
 * detached. Each large file being read has one (FileSaver keeps two for the next files).
 */
export class GearScanMemory {
  /** The gear table in front of the buffer (a chunker scanning here must use the same). */
  readonly gear: Int32Array;
  readonly #memory: WasmMemory;
  readonly #scan: (i: number, end: number, h: number, mask: number) => number;
  readonly #hash: { readonly value: number };
  #view: Buffer;

  /** Memory for `bytes` of data, growable to `maxBytes`; throws when the address space for it
   *  cannot be had (a ulimit -v: the engine reserves it up front), see gearScanMemory(). */
  constructor(gear: Int32Array, bytes: number, maxBytes: number) {
    if (gear.length !== 256) throw new RangeError('gear table must have 256 entries');
    this.gear = gear;
    // grow() detaches the memory's buffer
    expectDetachedBuffers();
    this.#memory = new WebAssembly.Memory({ initial: pagesFor(bytes), maximum: pagesFor(Math.max(bytes, maxBytes)) });
    new Int32Array(this.#memory.buffer, 0, 256).set(gear);
    const instance = new WebAssembly.Instance((compiled ??= new WebAssembly.Module(gearScanModule())), { m: { mem: this.#memory } });
    this.#scan = instance.exports.scan as GearScanMemory['scan'];
    this.#hash = instance.exports.h as { readonly value: number };
    this.#view = this.#viewOf(bytes);
  }

  /** The read buffer: valid until grow(). */
  get buffer(): Buffer {
    return this.#view;
  }

  /** Grows the buffer to `bytes` (its contents kept) and returns the new view. */
  grow(bytes: number): Buffer {
    const more = pagesFor(bytes) - this.#memory.buffer.byteLength / PAGE_BYTES;
    if (more > 0) this.#memory.grow(more);
    return (this.#view = this.#viewOf(bytes));
  }

  /** True when `buf` is a view of this memory (as it is now). */
  holds(buf: Uint8Array): boolean {
    return buf.buffer === this.#memory.buffer;
  }

  /** Rolls the gear hash from `h` over the memory's bytes [i, end) (addresses in the memory's
   *  buffer): the address just past the first byte where `h & mask` is 0, or -1 (then `hash`
   *  is the hash after `end`). */
  scan(i: number, end: number, h: number, mask: number): number {
    return this.#scan(i, end, h, mask);
  }

  /** The hash a scan that found no cut left. */
  get hash(): number {
    return this.#hash.value;
  }

  #viewOf(bytes: number): Buffer {
    return Buffer.from(this.#memory.buffer, TABLE_BYTES, bytes);
  }
}

function pagesFor(dataBytes: number): number {
  return Math.ceil((TABLE_BYTES + dataBytes) / PAGE_BYTES);
}

/** A GearScanMemory, or undefined when the engine cannot reserve one (its callers then read
 *  into plain buffers, scanned by the JavaScript loop). */
export function gearScanMemory(gear: Int32Array, bytes: number, maxBytes: number): GearScanMemory | undefined {
  try {
    return new GearScanMemory(gear, bytes, maxBytes);
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}
