import { CairnError, NotFoundError } from '../core/errors.js';
import type { BlobInfo, BlobKind, BlobRef, BlobStore, ByteRange, GetOptions, Op, PutOptions } from '../repo/blob-store.js';
import { assertBlobKind, assertBlobRef, checkRange } from './local-store.js';

/** Options of MemoryBlobStore. */
export interface MemoryBlobStoreOptions {
  /** The store's clock for `modifiedMs`, in epoch milliseconds; defaults to Date.now. */
  readonly now?: () => number;
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly modifiedMs: number;
}

function keyOf(ref: BlobRef): string {
  return `${ref.kind}/${ref.name}`;
}

/**
 * A BlobStore held in a Map, for tests and dry runs; it passes the same contract suite as the
 * real backends. Bytes are copied in and out, so no caller can change what is stored.
 */
export class MemoryBlobStore implements BlobStore {
  readonly location = 'memory:';
  readonly #blobs = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(opts: MemoryBlobStoreOptions = {}) {
    this.#now = opts.now ?? (() => Date.now());
  }

  async put(ref: BlobRef, body: Uint8Array, opts: PutOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    assertBlobRef(ref);
    const key = keyOf(ref);
    if (opts.ifNoneMatch === true && this.#blobs.has(key)) {
      throw new CairnError('E_BLOB_EXISTS', `${this.location}${key} already exists`);
    }
    this.#blobs.set(key, { bytes: new Uint8Array(body), modifiedMs: this.#now() });
  }

  async get(ref: BlobRef, range?: ByteRange, opts: GetOptions = {}): Promise<Uint8Array> {
    opts.signal?.throwIfAborted();
    const { bytes } = this.#entry(ref);
    const { offset, length } = range ?? { offset: 0, length: bytes.byteLength };
    if (range !== undefined) checkRange(range, bytes.byteLength, `${this.location}${keyOf(ref)}`);
    if (opts.into && opts.into.length >= length) {
      opts.into.set(bytes.subarray(offset, offset + length));
      return opts.into.subarray(0, length);
    }
    return bytes.slice(offset, offset + length);
  }

  async stat(ref: BlobRef, opts: Op = {}): Promise<BlobInfo> {
    opts.signal?.throwIfAborted();
    const { bytes, modifiedMs } = this.#entry(ref);
    return { ref: { kind: ref.kind, name: ref.name }, sizeBytes: bytes.byteLength, modifiedMs };
  }

  async *list(kind: BlobKind, opts: Op = {}): AsyncIterable<BlobInfo> {
    opts.signal?.throwIfAborted();
    assertBlobKind(kind);
    const prefix = `${kind}/`;
    // A snapshot of the keys, so that puts and deletes during iteration cannot confuse it.
    for (const [key, { bytes, modifiedMs }] of [...this.#blobs]) {
      opts.signal?.throwIfAborted();
      if (!key.startsWith(prefix)) continue;
      yield { ref: { kind, name: key.slice(prefix.length) }, sizeBytes: bytes.byteLength, modifiedMs };
    }
  }

  async delete(ref: BlobRef, opts: Op = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    assertBlobRef(ref);
    this.#blobs.delete(keyOf(ref));
  }

  #entry(ref: BlobRef): Entry {
    assertBlobRef(ref);
    const entry = this.#blobs.get(keyOf(ref));
    if (entry === undefined) throw new NotFoundError(`no blob at ${this.location}${keyOf(ref)}`);
    return entry;
  }
}

/** Creates an empty MemoryBlobStore. */
export function createMemoryStore(opts: MemoryBlobStoreOptions = {}): MemoryBlobStore {
  return new MemoryBlobStore(opts);
}
