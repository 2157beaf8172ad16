import { decode, decodeSync } from '../core/codec.js';
import { IntegrityError, NotFoundError, wrapError } from '../core/errors.js';
import type { IdHasher } from '../core/hash.js';
import { type BlobId, fromHex, toHex } from '../core/ids.js';
import { BlobType, type BlobTypeId, blobAad, packKey } from '../core/pack-format.js';

/** Bytes of whole tree packs kept in memory: two packs at the default size. */
const TREE_CACHE_BYTES = 40 * 1024 * 1024;
import { open, openInPlace } from '../core/seal.js';
import type { BlobStore, Op } from './blob-store.js';
import type { BlobLocation, CompactIndex } from './compact-index.js';

/** Pack keys by pack (derived from the data key and the pack's salt), kept for the next blob of
 *  the same pack. */
export class PackKeys {
  readonly #dataKey: Uint8Array;
  readonly #keys = new Map<string, Buffer>();

  constructor(dataKey: Uint8Array) {
    this.#dataKey = dataKey;
  }

  get(packId: string, salt: Uint8Array): Buffer {
    let k = this.#keys.get(packId);
    if (!k) {
      if (this.#keys.size > 4096) this.#keys.clear();
      k = packKey(this.#dataKey, salt);
      this.#keys.set(packId, k);
    }
    return k;
  }
}

/** Where a sealed blob comes from and what it opens to: what opening and verifying it takes. */
export type SealedBlobInfo = Pick<BlobLocation, 'type' | 'packId' | 'salt' | 'rawLength'>;

/** Opens the sealed bytes of a blob on this thread (decrypt, decompress, verify against `id`);
 *  BlobReader.openBlob, for callers on a worker thread (restore's file writers). With `into`
 *  (see decodeSync), the plaintext may be a view of it. With `inPlace`, it is decrypted over
 *  `sealed` (see openInPlace) and may be a view of that. */
export function openBlobSync(keys: PackKeys, hasher: IdHasher, id: Uint8Array, loc: SealedBlobInfo, sealed: Uint8Array, into?: Uint8Array, inPlace = false): Uint8Array {
  try {
    const key = keys.get(loc.packId, loc.salt);
    const plain = inPlace ? openInPlace(key, sealed, blobAad(loc.type, id)) : open(key, sealed, blobAad(loc.type, id));
    const data = decodeSync(plain[0]!, plain.subarray(1), loc.rawLength, into);
    if (!hasher.raw(data).equals(id)) throw new IntegrityError('plaintext does not hash to its id');
    return data;
  } catch (err) {
    throw blobError(id, loc, err);
  }
}

function blobError(id: Uint8Array, loc: SealedBlobInfo, err: unknown): unknown {
  if (err instanceof IntegrityError) return new IntegrityError(`blob ${toHex(id).slice(0, 12)} in pack ${loc.packId.slice(0, 12)}: ${err.message}`, { cause: err });
  return err;
}

/** The error for a blob that no index lists. */
export function notIndexed(id: string): NotFoundError {
  return new NotFoundError(`blob ${id.slice(0, 12)} is not in the index: the repository is missing data (run cairn check)`);
}

/** Reads blobs back, authenticating each (GCM tag bound to type and id) and checking that its
 *  plaintext hashes to its id: a blob that comes back is exactly the blob that was saved. */
export class BlobReader {
  readonly #store: Pick<BlobStore, 'get' | 'location'>;
  readonly #index: CompactIndex;
  readonly #hasher: IdHasher;
  readonly #keys: PackKeys;
  /** Whole tree packs, most recently used last: trees are small and read in bursts (every
   *  directory of a parent snapshot), so one read of a 16 MiB tree pack replaces thousands of
   *  ranged reads. Bounded by TREE_CACHE_BYTES. */
  readonly #treePacks = new Map<string, Promise<Uint8Array>>();
  readonly #treePackBytes = new Map<string, number>();
  #treeCacheBytes = 0;

  constructor(store: Pick<BlobStore, 'get' | 'location'>, index: CompactIndex, dataKey: Uint8Array, hasher: IdHasher) {
    this.#store = store;
    this.#index = index;
    this.#keys = new PackKeys(dataKey);
    this.#hasher = hasher;
  }

  /** Where a blob is; rejects with NotFoundError when no index lists it. */
  locate(id: BlobId | Uint8Array): BlobLocation {
    const raw = typeof id === 'string' ? fromHex(id) : id;
    const loc = this.#index.lookup(raw);
    if (!loc) throw notIndexed(toHex(raw));
    return loc;
  }

  /** Loads one blob by id. */
  async load(type: BlobTypeId, id: BlobId, opts: Op = {}): Promise<Uint8Array> {
    const raw = fromHex(id);
    const loc = this.locate(raw);
    if (loc.type !== type) throw new IntegrityError(`blob ${id.slice(0, 12)} is indexed as type ${loc.type}, wanted ${type}`);
    let sealed: Uint8Array;
    try {
      if (type === BlobType.tree) {
        const pack = await this.#treePack(loc.packId, opts);
        if (loc.offset + loc.length > pack.length) throw new IntegrityError(`blob ${id.slice(0, 12)}: pack ${loc.packId.slice(0, 12)} is shorter than the index says`);
        sealed = pack.subarray(loc.offset, loc.offset + loc.length);
      } else sealed = await this.#store.get({ kind: 'data', name: loc.packId }, { offset: loc.offset, length: loc.length }, opts);
    } catch (err) {
      if (err instanceof IntegrityError) throw err;
      throw wrapError(`read blob ${id.slice(0, 12)} from pack ${loc.packId.slice(0, 12)} in ${this.#store.location}`, err);
    }
    return this.openBlob(raw, loc, sealed);
  }

  /** Opens the sealed bytes of a blob at `loc` and verifies them against `id`. With `into` (see
   *  decodeSync), the plaintext may be a view of it, valid until the caller reuses it. */
  async openBlob(id: Uint8Array, loc: SealedBlobInfo, sealed: Uint8Array, into?: Uint8Array): Promise<Uint8Array> {
    try {
      const plain = open(this.#keys.get(loc.packId, loc.salt), sealed, blobAad(loc.type, id));
      // (decode, not decodeSync: an lz4 body decompresses on the libuv pool)
      const data = await decode(plain[0]!, plain.subarray(1), loc.rawLength, into);
      if (!this.#hasher.raw(data).equals(id)) throw new IntegrityError('plaintext does not hash to its id');
      return data;
    } catch (err) {
      throw blobError(id, loc, err);
    }
  }

  /** Forgets the tree packs kept for reuse (up to TREE_CACHE_BYTES): call when a walk of
   *  trees is over, so a restore's pack reads or an idle agent do not hold them. */
  dropTreeCache(): void {
    for (const [id, size] of this.#treePackBytes) {
      this.#treePacks.delete(id);
      this.#treeCacheBytes -= size;
    }
    this.#treePackBytes.clear();
  }

  async #treePack(packId: string, opts: Op): Promise<Uint8Array> {
    let p = this.#treePacks.get(packId);
    if (p) {
      this.#treePacks.delete(packId);
      this.#treePacks.set(packId, p);
      return p;
    }
    p = this.#store.get({ kind: 'data', name: packId }, undefined, opts);
    this.#treePacks.set(packId, p);
    let bytes: Uint8Array;
    try {
      bytes = await p;
    } catch (err) {
      this.#treePacks.delete(packId);
      throw err;
    }
    if (this.#treePacks.get(packId) === p) {
      this.#treePackBytes.set(packId, bytes.length);
      this.#treeCacheBytes += bytes.length;
    }
    for (const id of this.#treePacks.keys()) {
      if (this.#treeCacheBytes <= TREE_CACHE_BYTES || id === packId) break;
      const size = this.#treePackBytes.get(id);
      if (size === undefined) continue; // still loading: its caller holds it
      this.#treePacks.delete(id);
      this.#treePackBytes.delete(id);
      this.#treeCacheBytes -= size;
    }
    return bytes;
  }
}
