import { Blake3Hasher } from '@napi-rs/blake-hash';
import type { BlobId } from './ids.js';

/** Computes blob ids: keyed BLAKE3 of the plaintext, keyed by the repository's id key, so an id
 *  cannot confirm that a known file is stored without the key. Not safe to share across threads;
 *  cheap to create. */
export class IdHasher {
  readonly #hasher: Blake3Hasher;

  constructor(idKey: Uint8Array) {
    if (idKey.length !== 32) throw new RangeError(`id key must be 32 bytes, got ${idKey.length}`);
    this.#hasher = Blake3Hasher.newKeyed(Buffer.from(idKey));
  }

  /** The id of `data`, in hex. Cheaper than raw(): the binding returns a string, where
   *  digestBuffer() makes an external buffer (with a weak handle V8 must clear) per call; a
   *  first backup asks for ~150k ids. fromHex() then gives the bytes from Node's buffer pool. */
  id(data: Uint8Array): BlobId {
    this.#hasher.reset();
    this.#hasher.update(data);
    return this.#hasher.digest('hex') as BlobId;
  }

  /** The 32 raw bytes of the id of `data`. */
  raw(data: Uint8Array): Buffer {
    this.#hasher.reset();
    this.#hasher.update(data);
    return this.#hasher.digestBuffer();
  }
}

/** A 32-byte subkey of `keyMaterial` for one purpose (BLAKE3 derive_key); `context` names the
 *  purpose and must be a fixed, unique string such as "cairn 2026 chunker gear v1". */
export function deriveKey(context: string, keyMaterial: Uint8Array): Buffer {
  return Blake3Hasher.deriveKey(context, keyMaterial);
}

/** Unkeyed BLAKE3, for content-addressed names of already-encrypted objects (packs, index files). */
export function plainHash(data: Uint8Array): string {
  const h = new Blake3Hasher();
  h.update(data);
  return h.digest('hex');
}
