import { type CompressionParams, encode } from '../core/codec.js';
import { plainHash } from '../core/hash.js';
import type { PackId, RandomBytes } from '../core/ids.js';
import { BlobType, type BlobTypeId, ENTRY_BYTES, PACK_PREAMBLE_BYTES, PACK_SALT_BYTES, PACK_TRAILER_BYTES, type PackEntry, blobAad, packFooter, packKey, packPreamble } from '../core/pack-format.js';
import { SEAL_OVERHEAD, sealPieces } from '../core/seal.js';
import type { IndexedPack } from '../core/index-format.js';

/** A pack that is complete and ready to upload: its bytes are final and re-sendable. */
export interface FinishedPack extends IndexedPack {
  readonly bytes: Buffer;
  /** Called once the pack is stored, when its buffer may be reused (a seal worker's packs). */
  readonly release?: () => void;
}

/** Gives a buffer of at least `n` bytes that owns its ArrayBuffer from offset 0 (a pack is
 *  written into it; it may be longer, and may be a spare one given back earlier). */
export type PackAlloc = (n: number) => Buffer;

/** A pack's bytes beyond its target: room for the blob that crosses the target (up to a
 *  default max-size chunk, 8 MiB, with its seal) and for the header. A pack that would outgrow
 *  target + slack is closed before that blob instead, which only larger chunks (a chunker set
 *  above 8 MiB) or very many tiny blobs bring about: packs stay at or above their target. */
export const PACK_SLACK_BYTES = 9 * 1024 * 1024;
/** A new pack's first buffer, when the allocator is not one that hands out whole spares:
 *  doubled as the pack grows, so a run's few tree blobs do not cost a 25 MiB buffer. */
const FIRST_BUFFER_BYTES = 256 * 1024;

const footerBytes = (count: number): number => SEAL_OVERHEAD + 4 + count * ENTRY_BYTES + PACK_TRAILER_BYTES;

/**
 * Builds one pack at a time: seals blobs under the pack's subkey straight into the pack's
 * buffer, in the order they come, and when the pack reaches its target size hands back the
 * finished bytes (add() closes packs; finish() closes the last one). A pack stays within
 * target + PACK_SLACK_BYTES unless one blob alone is larger.
 */
export class PackBuilder {
  readonly #dataKey: Uint8Array;
  readonly #random: RandomBytes;
  readonly #targetBytes: number;
  readonly #alloc: PackAlloc;
  #salt: Uint8Array;
  #key: Buffer;
  #buf: Buffer | undefined;
  /** Where the next blob goes (the preamble comes first). */
  #at = PACK_PREAMBLE_BYTES;
  #entries: PackEntry[] = [];

  constructor(dataKey: Uint8Array, random: RandomBytes, targetBytes: number, alloc: PackAlloc = (n) => Buffer.allocUnsafeSlow(n)) {
    this.#dataKey = dataKey;
    this.#random = random;
    this.#targetBytes = targetBytes;
    this.#alloc = alloc;
    this.#salt = random(PACK_SALT_BYTES);
    this.#key = packKey(dataKey, this.#salt);
  }

  /** Sealed blob bytes in the pack so far. */
  get bufferedBytes(): number {
    return this.#at - PACK_PREAMBLE_BYTES;
  }

  /** Blobs in the pack so far. */
  get count(): number {
    return this.#entries.length;
  }

  /** True once the pack has reached its target size. */
  get full(): boolean {
    return this.bufferedBytes >= this.#targetBytes;
  }

  /** False when a blob of `encodedLength` bytes (codec byte excluded) would take a pack that
   *  has blobs past target + PACK_SLACK_BYTES: finish the pack first. */
  fits(encodedLength: number): boolean {
    if (this.#entries.length === 0) return true;
    const end = this.#at + SEAL_OVERHEAD + 1 + encodedLength + footerBytes(this.#entries.length + 1);
    return end <= this.#targetBytes + PACK_SLACK_BYTES;
  }

  /** Seals an encoded blob in as writers do: the pack is closed first when the blob would take
   *  it past target + PACK_SLACK_BYTES (see fits), and closed after the blob once it reaches
   *  its target. Returns the blob's sealed length and the packs closed, in order. */
  add(type: BlobTypeId, id: Uint8Array, codec: number, body: Uint8Array, rawLength: number): { sealed: number; closed: FinishedPack[] } {
    const closed: FinishedPack[] = [];
    if (!this.fits(body.length)) closed.push(this.finish()!);
    const sealed = this.addEncoded(type, id, codec, body, rawLength);
    if (this.full) closed.push(this.finish()!);
    return { sealed, closed };
  }

  /** Seals an already encoded blob into the current pack, whatever its size (add() is what
   *  writers call); returns its sealed length. */
  addEncoded(type: BlobTypeId, id: Uint8Array, codec: number, body: Uint8Array, rawLength: number): number {
    const sealed = sealPieces(this.#key, [Uint8Array.of(codec), body], this.#random, blobAad(type, id));
    let length = 0;
    for (const p of sealed) length += p.length;
    // room for the header too, so a pack of one blob larger than the slack grows once, not twice
    const buf = this.#room(length + footerBytes(this.#entries.length + 1));
    const offset = this.#at;
    for (const p of sealed) {
      buf.set(p, this.#at);
      this.#at += p.length;
    }
    this.#entries.push({ type, id: Uint8Array.from(id), offset, length, rawLength });
    return length;
  }

  /** Finishes the pack (its blobs, then the sealed header) and starts a new one. Returns
   *  undefined when the pack is empty. */
  finish(): FinishedPack | undefined {
    if (this.#entries.length === 0) return undefined;
    const entries = this.#entries;
    const footer = packFooter(this.#key, entries, this.#random);
    const buf = this.#room(footer.length);
    buf.set(footer, this.#at);
    const bytes = buf.subarray(0, this.#at + footer.length);
    const done: FinishedPack = { packId: plainHash(bytes) as PackId, salt: this.#salt, entries, bytes };
    this.#salt = this.#random(PACK_SALT_BYTES);
    this.#key = packKey(this.#dataKey, this.#salt);
    this.#buf = undefined;
    this.#at = PACK_PREAMBLE_BYTES;
    this.#entries = [];
    return done;
  }

  /** The pack's buffer with room for `n` more bytes: the first one (with the preamble written),
   *  or a larger one holding what is written so far. */
  #room(n: number): Buffer {
    const need = this.#at + n;
    const cur = this.#buf;
    if (cur && need <= cur.length) return cur;
    const cap = Math.min(this.#targetBytes + PACK_SLACK_BYTES, Math.max(FIRST_BUFFER_BYTES, 2 * (cur?.length ?? 0)));
    const next = this.#alloc(Math.max(need, cap));
    if (cur) cur.copy(next, 0, 0, this.#at);
    else packPreamble(this.#salt).copy(next, 0);
    this.#buf = next;
    return next;
  }
}

/** Compresses a blob for storage per the repository's settings (trees always with zstd: JSON
 *  compresses ~5x and trees are read on every incremental run). */
export function encodeBlob(type: BlobTypeId, data: Uint8Array, compression: CompressionParams): ReturnType<typeof encode> {
  if (type === BlobType.tree && compression.codec !== 'none') return encode(data, { codec: 'zstd', level: Math.max(3, compression.level) });
  return encode(data, compression);
}
