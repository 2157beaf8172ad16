import { compress as lz4Compress, uncompress as lz4Uncompress } from 'lz4-napi';
import { createRequire } from 'node:module';
import { IntegrityError } from './errors.js';

/** @mongodb-js/zstd's JS wrapper (index.js) is `async function compress(data)`: it drops the
 *  level, so every call would run at zstd's default level 3, ~2x slower than level 1. Its native
 *  binding takes the level; call that directly (test/core/codec.test.ts pins the difference). */
const zstd = createRequire(import.meta.url)('@mongodb-js/zstd/bindings') as {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
};

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

/** A compressed (or raw) blob body and the codec that reads it back. */
export interface Encoded {
  readonly codec: CodecId;
  readonly bytes: Uint8Array;
}

/** Compresses `data` with `params` on the libuv pool (native, async: the main thread keeps going),
 *  or returns it raw when compression does not pay. */
export async function encode(data: Uint8Array, params: CompressionParams): Promise<Encoded> {
  if (params.codec === 'none' || data.length < 64) return { codec: Codec.none, bytes: data };
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = params.codec === 'lz4' ? await lz4Compress(buf) : await zstd.compress(buf, params.level);
  if (out.length > data.length - (data.length >>> MIN_SAVING_SHIFT)) return { codec: Codec.none, bytes: data };
  return { codec: Codec[params.codec], bytes: out };
}

/** Reverses encode. Rejects with IntegrityError on an unknown codec or a length other than
 *  `rawLength` (when given). */
export async function decode(codec: number, bytes: Uint8Array, rawLength?: number): Promise<Uint8Array> {
  let out: Uint8Array;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    switch (codec) {
      case Codec.none:
        out = bytes;
        break;
      case Codec.lz4:
        out = await lz4Uncompress(buf);
        break;
      case Codec.zstd:
        out = await zstd.decompress(buf);
        break;
      default:
        throw new IntegrityError(`unknown codec byte ${codec}: the blob is damaged or was written by a newer cairn`);
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError('blob does not decompress', { cause: err });
  }
  if (rawLength !== undefined && out.length !== rawLength) {
    throw new IntegrityError(`blob decompressed to ${out.length} bytes, the index says ${rawLength}`);
  }
  return out;
}
