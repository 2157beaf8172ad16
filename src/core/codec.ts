import type * as Lz4 from 'lz4-napi';
import { createRequire } from 'node:module';
import { IntegrityError } from './errors.js';

/** zstd-napi's low-level binding: libzstd's own API over caller-owned buffers. cairn keeps one
 *  compression and one decompression context per thread and reuses them: a fresh context per
 *  blob (what @mongodb-js/zstd and node:zlib do) clears its tables on every call, which made a
 *  3 KB blob cost ~70 µs of cpu, 4x what it costs with a reused context (native-bench/RESULTS.md).
 *  Required, not imported: it is CommonJS with a native addon. */
const zstd = createRequire(import.meta.url)('zstd-napi/binding') as ZstdBinding;

/** lz4-napi, required on first use: a repository compresses with zstd unless created with lz4,
 *  and loading the addon costs every thread that never uses it ~5 MiB. */
let lz4Module: typeof Lz4 | undefined;
function lz4(): typeof Lz4 {
  return (lz4Module ??= createRequire(import.meta.url)('lz4-napi') as typeof Lz4);
}

/** The part of zstd-napi/binding cairn uses (its own .d.ts declares it as a CJS module). */
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => {
    decompress(dst: Uint8Array, src: Uint8Array): number;
    decompressStream(dst: Uint8Array, src: Uint8Array): [remaining: number, produced: number, consumed: number];
    reset(directive: number): void;
  };
  compressBound(n: number): number;
  getFrameContentSize(frame: Uint8Array): number | null;
  ResetDirective: { sessionOnly: number };
}

/** The per-blob codec byte, the first byte of every sealed blob's plaintext. Values are a format
 *  commitment (docs/format.md). */
export const Codec = { none: 0, lz4: 1, zstd: 2 } as const;
/** One of the codec byte values. */
export type CodecId = (typeof Codec)[keyof typeof Codec];
/** Codec names as written in cairn.json. */
export type CodecName = keyof typeof Codec;

/** How a repository compresses: cairn.json `compression`. */
export interface CompressionParams {
  readonly codec: CodecName;
  /** zstd level (1–19); ignored by lz4 and none. */
  readonly level: number;
}

/** zstd level 3 for new repositories. On 150k files / 2.9 GB (native-bench/RESULTS.md): level 1
 *  853 MiB, level 2 845 MiB, level 3 826 MiB (restic 831 MiB), with no loss of backup wall time
 *  (the main thread bounds it; compression runs on the other core), at 152% cpu instead of 137%.
 *  A repository keeps the level it was created with (cairn.json). */
export const DEFAULT_COMPRESSION: CompressionParams = { codec: 'zstd', level: 3 };

/** Compression must save at least 1/32 of the bytes to be kept; otherwise the blob is stored raw,
 *  which also makes restore of incompressible data skip a decompress. */
const MIN_SAVING_SHIFT = 5;

/** The largest blob a frame may claim to decode to: above every chunk and tree a repository
 *  writes (max chunk 64 MiB), so a damaged size field cannot make a reader allocate gigabytes. */
const MAX_DECODED_BYTES = 256 * 1024 * 1024;

/** A compressed (or raw) blob body and the codec that reads it back. */
export interface Encoded {
  readonly codec: CodecId;
  readonly bytes: Uint8Array;
}

/** Upper bounds of the input sizes each of this thread's compression contexts takes (the last
 *  takes the rest). zstd sizes a context's tables to the input and reallocates them when an input
 *  needs more, or after 128 calls that needed under a third: one context for a backup's mix of
 *  small files and 0.5-8 MiB chunks reallocated ~0.5-2 MiB per few calls, 2 GB in all on the
 *  benchmark, which fragmented each thread's malloc heap (docs/decisions.md §34). Past 256 KiB
 *  zstd's level 1-19 parameters stop growing with the input. */
const CCTX_CLASSES = [16 * 1024, 256 * 1024];

/** This thread's zstd contexts (by CCTX_CLASSES) and output buffer (module state is per
 *  thread: a worker thread loads its own copy of this module). */
const cctxs: InstanceType<ZstdBinding['CCtx']>[] = [];
let dctx: InstanceType<ZstdBinding['DCtx']> | undefined;
let scratch = Buffer.alloc(0);

/**
 * Compresses `data` on this thread, or returns it raw when compression does not pay. With
 * `scratchOk` the compressed bytes may be a view of this thread's scratch buffer, valid only
 * until the next encodeSync call: for a caller that seals them at once and so needs no copy.
 */
export function encodeSync(data: Uint8Array, params: CompressionParams, scratchOk = false): Encoded {
  if (params.codec === 'none' || data.length < 64) return { codec: Codec.none, bytes: data };
  const limit = data.length - (data.length >>> MIN_SAVING_SHIFT);
  let out: Uint8Array;
  if (params.codec === 'lz4') {
    out = lz4().compressSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } else {
    const bound = zstd.compressBound(data.length);
    if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(Math.max(bound, 64 * 1024));
    let c = 0;
    while (c < CCTX_CLASSES.length && data.length > CCTX_CLASSES[c]!) c++;
    const n = (cctxs[c] ??= new zstd.CCtx()).compress(scratch, data, params.level);
    if (n > limit) return { codec: Codec.none, bytes: data };
    out = scratchOk ? scratch.subarray(0, n) : Buffer.from(scratch.subarray(0, n));
  }
  if (out.length > limit) return { codec: Codec.none, bytes: data };
  return { codec: Codec[params.codec], bytes: out };
}

/** encode() for callers that must not block: lz4 runs on the libuv pool; zstd runs on this
 *  thread (a reused context makes it cheap; the engine compresses data blobs in seal workers). */
export async function encode(data: Uint8Array, params: CompressionParams): Promise<Encoded> {
  if (params.codec !== 'lz4' || data.length < 64) return encodeSync(data, params);
  const out = await lz4().compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  if (out.length > data.length - (data.length >>> MIN_SAVING_SHIFT)) return { codec: Codec.none, bytes: data };
  return { codec: Codec.lz4, bytes: out };
}

/** Reverses encode on this thread. Throws IntegrityError on an unknown codec, a body that does
 *  not decompress, or a length other than `rawLength` (when given). With `into` (longer than
 *  rawLength), a zstd body is decompressed into it and the result is a view of it, valid until
 *  the caller reuses it; a raw body is always returned as is, a view of `bytes`. */
export function decodeSync(codec: number, bytes: Uint8Array, rawLength?: number, into?: Uint8Array): Uint8Array {
  let out: Uint8Array;
  try {
    switch (codec) {
      case Codec.none:
        out = bytes;
        break;
      case Codec.lz4:
        out = lz4().uncompressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        break;
      case Codec.zstd:
        out = zstdDecode(bytes, rawLength, into);
        break;
      default:
        throw new IntegrityError(`unknown codec byte ${codec}: the blob is damaged or was written by a newer cairn`);
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError('blob does not decompress', { cause: err });
  }
  checkLength(out, rawLength);
  return out;
}

/** decodeSync, with lz4 on the libuv pool. */
export async function decode(codec: number, bytes: Uint8Array, rawLength?: number, into?: Uint8Array): Promise<Uint8Array> {
  if (codec !== Codec.lz4) return decodeSync(codec, bytes, rawLength, into);
  let out: Uint8Array;
  try {
    out = await lz4().uncompress(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new IntegrityError('blob does not decompress', { cause: err });
  }
  checkLength(out, rawLength);
  return out;
}

function checkLength(out: Uint8Array, rawLength: number | undefined): void {
  if (rawLength !== undefined && out.length !== rawLength) {
    throw new IntegrityError(`blob decompressed to ${out.length} bytes, the index says ${rawLength}`);
  }
}

/** One zstd frame into a buffer of its size: the index's raw length, else the frame's content
 *  size field, else (frames written before cairn 0.1's zstd-napi codec omit it) by streaming. */
function zstdDecode(bytes: Uint8Array, rawLength: number | undefined, into: Uint8Array | undefined): Uint8Array {
  dctx ??= new zstd.DCtx();
  const size = rawLength ?? zstd.getFrameContentSize(bytes);
  if (size === null) return zstdDecodeStream(dctx, bytes);
  if (size > MAX_DECODED_BYTES) throw new IntegrityError(`blob claims to decompress to ${size} bytes, more than any blob cairn writes`);
  // one byte more than expected, so a frame that decodes longer is caught, not cut short
  const out = into && into.length > size ? into.subarray(0, size + 1) : Buffer.allocUnsafe(size + 1);
  const n = dctx.decompress(out, bytes);
  return out.subarray(0, n);
}

function zstdDecodeStream(ctx: InstanceType<ZstdBinding['DCtx']>, bytes: Uint8Array): Uint8Array {
  ctx.reset(zstd.ResetDirective.sessionOnly);
  const parts: Buffer[] = [];
  let total = 0;
  let src = bytes;
  for (;;) {
    const dst = Buffer.allocUnsafe(Math.min(Math.max(src.length * 4, 64 * 1024), 8 * 1024 * 1024));
    const [remaining, produced, consumed] = ctx.decompressStream(dst, src);
    parts.push(dst.subarray(0, produced));
    total += produced;
    if (total > MAX_DECODED_BYTES) throw new IntegrityError('blob decompresses to more than any blob cairn writes');
    src = src.subarray(consumed);
    if (remaining === 0) break;
    if (src.length === 0 && produced < dst.length) throw new IntegrityError('zstd frame is truncated');
  }
  if (src.length !== 0) throw new IntegrityError('zstd frame is followed by stray bytes');
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}
