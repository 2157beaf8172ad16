import { type CompressionParams, encode } from '../core/codec.js';
import { plainHash } from '../core/hash.js';
import type { PackId, RandomBytes } from '../core/ids.js';
import { BlobType, type BlobTypeId, PACK_PREAMBLE_BYTES, PACK_SALT_BYTES, type PackEntry, blobAad, packFooter, packKey, packPreamble } from '../core/pack-format.js';
import { sealPieces } from '../core/seal.js';
import type { IndexedPack } from '../core/index-format.js';

/** A pack that is complete and ready to upload: its bytes are final and re-sendable. */
export interface FinishedPack extends IndexedPack {
  readonly bytes: Buffer;
}

interface PendingBlob {
  readonly type: BlobTypeId;
  readonly id: Uint8Array;
  /** The sealed blob as pieces (nonce, ciphertext, tag): copied once, into the pack. */
  readonly sealed: Uint8Array[];
  readonly length: number;
  readonly rawLength: number;
}

/**
 * Builds one pack at a time in memory: compresses and seals blobs under the pack's subkey, and
 * when the pack reaches its target size hands back the finished bytes. Blobs are written in a
 * random order, so a pack's layout does not reveal file boundaries or chunk order.
 */
export class PackBuilder {
  readonly #dataKey: Uint8Array;
  readonly #random: RandomBytes;
  readonly #targetBytes: number;
  #salt: Uint8Array;
  #key: Buffer;
  #blobs: PendingBlob[] = [];
  #bytes = 0;

  constructor(dataKey: Uint8Array, random: RandomBytes, targetBytes: number) {
    this.#dataKey = dataKey;
    this.#random = random;
    this.#targetBytes = targetBytes;
    this.#salt = random(PACK_SALT_BYTES);
    this.#key = packKey(dataKey, this.#salt);
  }

  /** Sealed bytes buffered so far. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /** Blobs buffered so far. */
  get count(): number {
    return this.#blobs.length;
  }

  /** True once the pack has reached its target size. */
  get full(): boolean {
    return this.#bytes >= this.#targetBytes;
  }

  /** Seals an already encoded blob into the pack; returns its sealed length. */
  addEncoded(type: BlobTypeId, id: Uint8Array, codec: number, body: Uint8Array, rawLength: number): number {
    const sealed = sealPieces(this.#key, [Uint8Array.of(codec), body], this.#random, blobAad(type, id));
    let length = 0;
    for (const p of sealed) length += p.length;
    this.#blobs.push({ type, id: Uint8Array.from(id), sealed, length, rawLength });
    this.#bytes += length;
    return length;
  }

  /** Finishes the pack (blobs in random order, then the sealed header) and starts a new one.
   *  Returns undefined when the pack is empty. */
  finish(): FinishedPack | undefined {
    if (this.#blobs.length === 0) return undefined;
    const blobs = this.#blobs;
    shuffle(blobs, this.#random);
    const parts: Uint8Array[] = [packPreamble(this.#salt)];
    const entries: PackEntry[] = [];
    let offset = PACK_PREAMBLE_BYTES;
    for (const b of blobs) {
      parts.push(...b.sealed);
      entries.push({ type: b.type, id: b.id, offset, length: b.length, rawLength: b.rawLength });
      offset += b.length;
    }
    parts.push(packFooter(this.#key, entries, this.#random));
    const bytes = Buffer.concat(parts);
    const done: FinishedPack = { packId: plainHash(bytes) as PackId, salt: this.#salt, entries, bytes };
    this.#salt = this.#random(PACK_SALT_BYTES);
    this.#key = packKey(this.#dataKey, this.#salt);
    this.#blobs = [];
    this.#bytes = 0;
    return done;
  }
}

/** Fisher–Yates with 32-bit draws from a secure source (modulo bias < 2^-20 for < 4096 blobs). */
function shuffle<T>(items: T[], random: RandomBytes): void {
  if (items.length < 2) return;
  const r = Buffer.from(random(4 * items.length));
  for (let i = items.length - 1; i > 0; i--) {
    const j = r.readUInt32LE(4 * i) % (i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

/** Compresses a blob for storage per the repository's settings (trees always with zstd: JSON
 *  compresses ~5x and trees are read on every incremental run). */
export function encodeBlob(type: BlobTypeId, data: Uint8Array, compression: CompressionParams): ReturnType<typeof encode> {
  if (type === BlobType.tree && compression.codec !== 'none') return encode(data, { codec: 'zstd', level: Math.max(3, compression.level) });
  return encode(data, compression);
}
