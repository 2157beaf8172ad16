import { type CompressionParams, encode, encodeSync } from '../core/codec.js';
import { plainHash } from '../core/hash.js';
import { ID_BYTES, type PackId, type RandomBytes } from '../core/ids.js';
import { BlobType, type BlobTypeId, ENTRY_BYTES, PACK_PREAMBLE_BYTES, PACK_SALT_BYTES, PACK_TRAILER_BYTES, type PackEntry, BLOB_AAD_BYTES, blobAadInto, packFooter, packKey, packPreamble } from '../core/pack-format.js';
import { SEAL_OVERHEAD, sealPieces } from '../core/seal.js';
import type { IndexedPack } from '../core/index-format.js';

/** A pack built in memory, complete and ready to upload: its bytes are final and re-sendable. */
export interface FinishedPack extends IndexedPack {
  readonly bytes: Buffer;
}

/** A pack built as a file in a store's staging folder (see BlobStore.stagingDir), complete and
 *  closed, to be handed to BlobStore.putFile. */
export interface StagedPack extends IndexedPack {
  readonly file: string;
  readonly sizeBytes: number;
}

/** Gives a buffer of at least `n` bytes that owns its ArrayBuffer from offset 0 (a pack is
 *  written into it; it may be longer): a seal worker transfers a pack's whole ArrayBuffer. */
export type PackAlloc = (n: number) => Buffer;

/** Where a PackBuilder puts a pack's bytes as it seals them: a buffer (BufferPackOutput) or a
 *  staged file (FilePackOutput, in seal workers). */
export interface PackOutput<P extends IndexedPack> {
  /** Appends `pieces` (`length` bytes in all) to the current pack; at most `reserve` bytes (its
   *  header) will follow them. A pack's first append starts with its preamble. */
  append(pieces: readonly Uint8Array[], length: number, reserve: number): void;
  /** Appends `footer`, ends the pack and returns it. */
  end(footer: Uint8Array, salt: Uint8Array, entries: PackEntry[]): P;
  /** Drops the pack being written, if any (after a failure). */
  discard(): void;
}

/** A pack's bytes beyond its target: room for the blob that crosses the target (up to a
 *  default max-size chunk, 8 MiB, with its seal) and for the header. A pack that would outgrow
 *  target + slack is closed before that blob instead, which only larger chunks (a chunker set
 *  above 8 MiB) or very many tiny blobs bring about: packs stay at or above their target. */
export const PACK_SLACK_BYTES = 9 * 1024 * 1024;
/** A new pack's first buffer: doubled as the pack grows, so a run's few tree blobs do not cost
 *  a 25 MiB buffer. */
const FIRST_BUFFER_BYTES = 256 * 1024;

/** A blob's codec byte, by codec, made once: each small array handed to node:crypto from V8's
 *  heap costs a malloc (see sealPieces). */
const CODEC_BYTES: readonly Uint8Array[] = [0, 1, 2].map((c) => Buffer.from([c]));

const footerBytes = (count: number): number => SEAL_OVERHEAD + 4 + count * ENTRY_BYTES + PACK_TRAILER_BYTES;

/** Builds packs in memory: each pack in one buffer from `alloc`, grown by doubling up to
 *  `maxBytes` (a pack's target + PACK_SLACK_BYTES). */
export class BufferPackOutput implements PackOutput<FinishedPack> {
  readonly #maxBytes: number;
  readonly #alloc: PackAlloc;
  #buf: Buffer | undefined;
  #at = 0;

  constructor(maxBytes: number, alloc: PackAlloc = (n) => Buffer.allocUnsafeSlow(n)) {
    this.#maxBytes = maxBytes;
    this.#alloc = alloc;
  }

  append(pieces: readonly Uint8Array[], length: number, reserve: number): void {
    // room for the header too, so a pack of one blob larger than the slack grows once, not twice
    const buf = this.#room(length + reserve);
    for (const p of pieces) {
      buf.set(p, this.#at);
      this.#at += p.length;
    }
  }

  end(footer: Uint8Array, salt: Uint8Array, entries: PackEntry[]): FinishedPack {
    this.append([footer], footer.length, 0);
    const bytes = this.#buf!.subarray(0, this.#at);
    this.discard();
    return { packId: plainHash(bytes) as PackId, salt, entries, bytes };
  }

  discard(): void {
    this.#buf = undefined;
    this.#at = 0;
  }

  /** The pack's buffer with room for `n` more bytes: a first one, or a larger one holding what
   *  is written so far. */
  #room(n: number): Buffer {
    const need = this.#at + n;
    const cur = this.#buf;
    if (cur && need <= cur.length) return cur;
    const cap = Math.min(this.#maxBytes, Math.max(FIRST_BUFFER_BYTES, 2 * (cur?.length ?? 0)));
    const next = this.#alloc(Math.max(need, cap));
    if (cur) cur.copy(next, 0, 0, this.#at);
    this.#buf = next;
    return next;
  }
}

/**
 * Builds one pack at a time: seals blobs under the pack's subkey straight into its output, in
 * the order they come, and when the pack reaches its target size hands back the finished pack
 * (add() closes packs; finish() closes the last one). A pack stays within target +
 * PACK_SLACK_BYTES unless one blob alone is larger. Packs are built in memory unless an output
 * is given (FilePackOutput builds them as staged files).
 */
export class PackBuilder<P extends IndexedPack = FinishedPack> {
  readonly #dataKey: Uint8Array;
  readonly #random: RandomBytes;
  readonly #targetBytes: number;
  readonly #out: PackOutput<P>;
  #salt: Uint8Array;
  #key: Buffer;
  /** Where the next blob goes (the preamble comes first). */
  #at = PACK_PREAMBLE_BYTES;
  #entries: PackEntry[] = [];
  /** The aad of the blob being sealed (see blobAad): node:crypto takes it in at once. */
  readonly #aad = Buffer.allocUnsafeSlow(BLOB_AAD_BYTES);

  /** `output`: where packs go; without one they are built in memory. */
  constructor(dataKey: Uint8Array, random: RandomBytes, targetBytes: number, output?: PackOutput<P>) {
    this.#dataKey = dataKey;
    this.#random = random;
    this.#targetBytes = targetBytes;
    // no output means memory: a FinishedPack, which is P's default; a caller that names another
    // P passes its output (a cast, since TS cannot tie P's default to the argument)
    this.#out = output ?? (new BufferPackOutput(targetBytes + PACK_SLACK_BYTES) as unknown as PackOutput<P>);
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
  add(type: BlobTypeId, id: Uint8Array, codec: number, body: Uint8Array, rawLength: number): { sealed: number; closed: P[] } {
    const closed: P[] = [];
    if (!this.fits(body.length)) closed.push(this.finish()!);
    const sealed = this.addEncoded(type, id, codec, body, rawLength);
    if (this.full) closed.push(this.finish()!);
    return { sealed, closed };
  }

  /** Seals an already encoded blob into the current pack, whatever its size (add() is what
   *  writers call); returns its sealed length. */
  addEncoded(type: BlobTypeId, id: Uint8Array, codec: number, body: Uint8Array, rawLength: number): number {
    const sealed = sealPieces(this.#key, [CODEC_BYTES[codec] ?? Uint8Array.of(codec), body], this.#random, blobAadInto(this.#aad, type, id));
    let length = 0;
    for (const p of sealed) length += p.length;
    const reserve = footerBytes(this.#entries.length + 1);
    try {
      if (this.#entries.length === 0) {
        const preamble = packPreamble(this.#salt);
        this.#out.append([preamble, ...sealed], preamble.length + length, reserve);
      } else this.#out.append(sealed, length, reserve);
    } catch (err) {
      // a pack whose bytes could not all be written (a full disk) is dropped whole: its later
      // blobs must never land in a file without its first ones
      this.discard();
      throw err;
    }
    const offset = this.#at;
    this.#at += length;
    this.#entries.push({ type, id: Uint8Array.from(id), offset, length, rawLength });
    return length;
  }

  /** Finishes the pack (its blobs, then the sealed header) and starts a new one. Returns
   *  undefined when the pack is empty. */
  finish(): P | undefined {
    if (this.#entries.length === 0) return undefined;
    const entries = this.#entries;
    const footer = packFooter(this.#key, entries, this.#random);
    let done: P;
    try {
      done = this.#out.end(footer, this.#salt, entries);
    } catch (err) {
      this.discard();
      throw err;
    }
    this.#next();
    return done;
  }

  /** Drops the pack being built (after a failure): its blobs are in no pack. add() and
   *  finish() do so themselves when the output fails. */
  discard(): void {
    this.#out.discard();
    if (this.#entries.length > 0) this.#next();
  }

  #next(): void {
    this.#salt = this.#random(PACK_SALT_BYTES);
    this.#key = packKey(this.#dataKey, this.#salt);
    this.#at = PACK_PREAMBLE_BYTES;
    this.#entries = [];
  }
}

/** Compresses a blob for storage per the repository's settings (trees always with zstd: JSON
 *  compresses ~5x and trees are read on every incremental run). */
export function encodeBlob(type: BlobTypeId, data: Uint8Array, compression: CompressionParams): ReturnType<typeof encode> {
  if (type === BlobType.tree && compression.codec !== 'none') return encode(data, { codec: 'zstd', level: Math.max(3, compression.level) });
  return encode(data, compression);
}

/** Compresses and seals a batch of data blobs, laid end to end in `buf` with their ids (32 bytes
 *  each) in `ids`, into `builder`, handing each pack it closes to `onPack`; returns each blob's
 *  sealed length. What a seal worker does with a batch, and the main thread with one it seals
 *  itself (SealPool.assist). Throws what compressing or writing the pack throws. */
export function sealBatch<P extends IndexedPack>(builder: PackBuilder<P>, compression: CompressionParams, ids: Uint8Array, lengths: ArrayLike<number>, buf: Uint8Array, onPack: (pack: P) => void): Uint32Array {
  const sealed = new Uint32Array(lengths.length);
  let off = 0;
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i]!;
    const data = buf.subarray(off, off + n);
    off += n;
    // the compressed bytes may sit in this thread's scratch buffer: add() seals them at once
    const enc = encodeSync(data, compression, true);
    const added = builder.add(BlobType.data, ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), enc.codec, enc.bytes, n);
    sealed[i] = added.sealed;
    for (const pack of added.closed) onPack(pack);
  }
  return sealed;
}

