import { unlink } from 'node:fs/promises';
import type { CompressionParams } from '../core/codec.js';
import { isAbortError, wrapError } from '../core/errors.js';
import { Semaphore } from '../core/bounded.js';
import { ID_BYTES, type IndexId, type PackId, type RandomBytes, toHex } from '../core/ids.js';
import { BlobType, type BlobTypeId, type CompactEntries, compactEntries } from '../core/pack-format.js';
import type { BlobRef, BlobStore, Op } from './blob-store.js';
import type { CompactIndex } from './compact-index.js';
import { IdSet } from './id-set.js';
import { writeIndexFile } from './index-files.js';
import { packBuilder } from './pack-file.js';
import { type FinishedPack, type PackBuilder, type StagedPack, encodeBlob, sealBatch } from './pack-writer.js';
import { SealPool } from './seal-pool.js';

/** A stored pack that no index file lists yet. */
interface UnindexedPack extends CompactEntries {
  readonly packId: PackId;
  readonly salt: Uint8Array;
}

/** Settings of a BlobWriter. */
export interface BlobWriterOptions {
  readonly dataKey: Uint8Array;
  readonly compression: CompressionParams;
  readonly packTargetBytes: number;
  readonly random: RandomBytes;
  /** Pack uploads in flight at once; each holds one pack in memory. */
  readonly uploadConcurrency?: number;
  /** Compressions in flight at once (default ENCODE_CONCURRENCY). */
  readonly encodeConcurrency?: number;
  /** Write an index file after this many packs, so a crash loses little to re-upload. */
  readonly indexEveryPacks?: number;
  /** Worker threads that compress and seal data blobs (0: on this thread, the default). */
  readonly sealWorkers?: number;
}

/** Compressions in flight. Each holds a native zstd context outside the JS heap, so with small
 *  blobs a byte budget alone let thousands run at once (1 GB RSS on 150k files). Few in flight
 *  cost the main thread more per blob in completion work (20 KB blobs: ~80 µs with 8 in flight,
 *  ~20 µs with 64; native-bench/RESULTS.md). */
const ENCODE_CONCURRENCY = 32;

/** What a writer has added so far. */
export interface WriterStats {
  blobsAdded: number;
  bytesAdded: number;
  packsWritten: number;
}

/**
 * Saves blobs into packs and packs into the store, deduplicating against the index and against
 * blobs still in flight. Order of durability: a pack is uploaded before any index file lists
 * it, and (the caller's part) index files are flushed before a snapshot refers to their blobs.
 * A pack joins the shared in-memory index only once an index file lists it: until then only
 * this writer dedups against it, so a writer that fails leaves the shared index true to what is
 * on disk (its uploaded packs are orphans, which the next backup adopts).
 * `save` applies back-pressure: it waits while `uploadConcurrency` packs are uploading.
 * A failed upload fails the next save or flush.
 */
export class BlobWriter {
  readonly stats: WriterStats = { blobsAdded: 0, bytesAdded: 0, packsWritten: 0 };
  readonly #store: Pick<BlobStore, 'put' | 'putFile' | 'stagingDir'>;
  readonly #index: CompactIndex;
  readonly #opts: BlobWriterOptions;
  readonly #builders: Record<BlobTypeId, PackBuilder<FinishedPack | StagedPack>>;
  /** Ids of blobs saved that no index file lists yet: in a seal batch, a pack being built or
   *  uploaded, or a stored pack whose index file is not written yet. Known to this writer only
   *  (see above); each leaves once its index file is written and its pack is in the index. One
   *  set for both (the stored packs' blobs were a CompactIndex of their own, rebuilt at each
   *  index write): a first backup looks up each of ~150k new blobs in it and the index. */
  readonly #pending = new IdSet();
  readonly #uploads = new Set<Promise<void>>();
  readonly #slots: Semaphore;
  readonly #encoders: Semaphore;
  readonly #pool: SealPool | undefined;
  /** Uploads started and not yet holding an upload slot (packs handed over by seal workers). */
  readonly #starting = new Set<Promise<void>>();
  /** Packs from seal workers not yet uploaded, and who waits for that number to fall. */
  #packsQueued = 0;
  #roomWaiters: (() => void)[] = [];
  /** Stored packs that no index write has taken yet, their entries compact (a first backup of
   *  150k small files held ~45k entries as objects, ~12 MiB of heap). */
  #unindexed: UnindexedPack[] = [];
  #indexChain: Promise<unknown> = Promise.resolve();
  #written: IndexId[] = [];
  #failure: unknown;

  constructor(store: Pick<BlobStore, 'put' | 'putFile' | 'stagingDir'>, index: CompactIndex, opts: BlobWriterOptions) {
    this.#store = store;
    this.#index = index;
    this.#opts = opts;
    // packs are built as files when the store takes files (see BlobStore.stagingDir), so no
    // pack sits whole in memory; the tree pack of a large backup grew to 16 MiB of buffers
    const staging = store.putFile && store.stagingDir !== undefined ? store.stagingDir : undefined;
    const builder = (): PackBuilder<FinishedPack | StagedPack> => packBuilder(opts.dataKey, opts.random, opts.packTargetBytes, staging);
    this.#builders = { [BlobType.data]: builder(), [BlobType.tree]: builder() };
    this.#slots = new Semaphore(opts.uploadConcurrency ?? 2);
    this.#encoders = new Semaphore(opts.encodeConcurrency ?? ENCODE_CONCURRENCY);
    const workers = opts.sealWorkers ?? 0;
    this.#pool = workers > 0 ? new SealPool({ dataKey: opts.dataKey, compression: opts.compression, packTargetBytes: opts.packTargetBytes, ...(staging !== undefined ? { stagingDir: staging } : {}) }, workers, (pack) => this.#queueUpload(pack)) : undefined;
  }

  /** Seals one batch of data blobs waiting for the seal workers on this thread, into this
   *  writer's own data packs, when the workers have enough ahead of them (SealPool.assist).
   *  False when there was none, or there are no workers. For a caller that would otherwise wait
   *  for the workers: the backup's byte budget calls it when it is full (ByteBudget). */
  assist(): boolean {
    if (!this.#pool || this.#failure !== undefined) return false;
    return this.#pool.assist(this.#sealHere);
  }

  /** Compresses and seals a batch of data blobs into this writer's data pack (for assist). A
   *  failure fails the writer: a pack the builder dropped held blobs already counted as saved
   *  (the pool fails the batch's blobs with the error; #sealed wraps it for each). */
  readonly #sealHere = (ids: Uint8Array, lengths: readonly number[], buf: Uint8Array): Uint32Array => {
    try {
      return sealBatch(this.#builders[BlobType.data], this.#opts.compression, ids, lengths, buf, (pack) => this.#queueUpload(pack));
    } catch (err) {
      this.#failure ??= wrapError(`compress and seal a batch of ${lengths.length} blobs`, err);
      throw err;
    }
  };

  /** True when save() has copied a data blob by the time it returns its promise, so the caller
   *  may reuse the blob's buffer at once (with seal workers). */
  get copiesData(): boolean {
    return this.#pool !== undefined;
  }

  /** Room for a data blob of up to `n` bytes in the seal workers' next batch, to read it into
   *  and pass (the part filled) to saveData(), which then copies nothing, and which may leave
   *  it detached; undefined without workers. See SealPool.reserve. */
  reserve(n: number): Buffer | undefined {
    this.#throwIfFailed();
    try {
      return this.#pool?.reserve(n);
    } catch (err) {
      // the pool has failed (or closed): a repository error, as saveData() says, not the file's
      throw wrapError('compress and seal', err);
    }
  }

  /** Blobs this writer knows that the index does not list yet (see #pending). */
  get pendingBlobs(): number {
    return this.#pending.size;
  }

  /** True when the blob is stored or on its way. */
  known(id: Uint8Array): boolean {
    return this.#pending.has(id) || this.#index.has(id);
  }

  /** Stores a blob unless it is known; returns true when it was added. `id` must be the blob's
   *  keyed hash (the caller computed it to decide whether to read further), unchanged until the
   *  promise settles; `hex`, its hex form, if the caller has it. */
  async save(type: BlobTypeId, id: Uint8Array, data: Uint8Array, opts: Op = {}, hex?: string): Promise<boolean> {
    this.#throwIfFailed();
    const key = hex ?? toHex(id);
    if (this.#pool && type === BlobType.data) {
      return new Promise<boolean>((resolve, reject) => {
        if (!this.saveData(id, key, data, opts, (err) => (err === undefined ? resolve(true) : reject(err)))) resolve(false);
      });
    }
    if (this.known(id)) return false;
    this.#pending.add(id);
    let added: ReturnType<PackBuilder<FinishedPack | StagedPack>['add']>;
    try {
      const encoded = await this.#encoders.with(() => encodeBlob(type, data, this.#opts.compression));
      opts.signal?.throwIfAborted();
      added = this.#builders[type].add(type, id, encoded.codec, encoded.bytes, data.length);
    } catch (err) {
      // not in a pack: it must not count as known, or a snapshot could name a blob never stored
      this.#pending.delete(id);
      if (isAbortError(err)) throw err;
      // a CairnError, so the walker fails the backup at once instead of blaming the file; and
      // the writer fails too: a pack add() had closed before the failure is lost with it
      throw (this.#failure ??= wrapError(`compress and seal blob ${key.slice(0, 12)}`, err));
    }
    this.stats.bytesAdded += added.sealed;
    this.stats.blobsAdded++;
    for (const pack of added.closed) await this.#upload(pack, opts);
    return true;
  }

  /**
   * save() of a data blob for a writer with seal workers (copiesData), without a promise: a
   * first backup saves ~150k blobs, and each save() was ~4 promises, 2 async frames and a waiter
   * that outlived V8's young generation while the blob waited for its worker. Returns false when
   * the blob is known (`done` is never called); else copies the blob, returns true and calls
   * `done` once: with no error when the blob is sealed and the packs waiting for upload are few
   * enough (back-pressure), or with the error that failed it. Throws, and never calls `done`,
   * when the writer has failed or `opts.signal` is aborted. `id` must not change until then.
   */
  saveData(id: Uint8Array, hex: string, data: Uint8Array, opts: Op, done: (err: unknown) => void): boolean {
    this.#throwIfFailed();
    if (this.known(id)) return false;
    // checked before the blob goes to a worker: once there it will be in a pack
    opts.signal?.throwIfAborted();
    this.#pending.add(id);
    try {
      this.#pool!.addThen(BlobType.data, id, data, (err, sealed) => this.#sealed(id, hex, err, sealed, done));
    } catch (err) {
      // the pool has failed (or closed): the blob is in no pack
      this.#pending.delete(id);
      throw wrapError(`compress and seal blob ${hex.slice(0, 12)}`, err);
    }
    return true;
  }

  #sealed(id: Uint8Array, hex: string, err: unknown, sealed: number, done: (err: unknown) => void): void {
    if (err !== undefined) {
      this.#pending.delete(id);
      done(isAbortError(err) ? err : wrapError(`compress and seal blob ${hex.slice(0, 12)}`, err));
      return;
    }
    this.stats.bytesAdded += sealed;
    this.stats.blobsAdded++;
    if (this.#packsQueued > (this.#opts.uploadConcurrency ?? 2)) this.#roomWaiters.push(() => done(undefined));
    else done(undefined);
  }

  /** A pack of data blobs sealed for the seal pool (by a worker, or here by assist): uploaded
   *  like the packs built by save(), and counted until then (save() waits while too many are). */
  #queueUpload(pack: FinishedPack | StagedPack): void {
    this.#packsQueued++;
    const started: Promise<void> = this.#upload(pack, {}, () => this.#packUploaded()).finally(() => this.#starting.delete(started));
    this.#starting.add(started);
    void started.then(undefined, () => undefined);
  }

  /** Uploads what is buffered, waits for every upload, and writes the index file of all packs not
   *  yet indexed. Returns the index files this writer has written. */
  async flush(opts: Op = {}): Promise<IndexId[]> {
    // a failed writer stores nothing more: its builders may hold blobs of a lost pack
    this.#throwIfFailed();
    await this.#pool?.flush();
    for (const b of Object.values(this.#builders)) await this.#upload(b.finish(), opts);
    while (this.#starting.size > 0) await Promise.all(this.#starting);
    await Promise.all(this.#uploads);
    this.#throwIfFailed();
    this.#queueIndexWrite(opts);
    await this.#indexChain;
    this.#throwIfFailed();
    return this.#written;
  }

  /** Starts the upload of `pack` once an upload slot is free; `done` runs when it has ended. */
  async #upload(pack: FinishedPack | StagedPack | undefined, opts: Op, done?: () => void): Promise<void> {
    if (!pack) return;
    await this.#slots.acquire();
    const ref = { kind: 'data', name: pack.packId } as const;
    const job = ('file' in pack ? this.#putStaged(ref, pack.file, opts) : this.#store.put(ref, pack.bytes, opts))
      .then(() => this.#stored(pack, opts))
      .catch((err: unknown) => {
        this.#failure ??= wrapError(`upload pack ${pack.packId.slice(0, 12)}`, err);
      })
      .finally(() => {
        this.#slots.release();
        this.#uploads.delete(job);
        done?.();
      });
    this.#uploads.add(job);
  }

  /** A pack is stored. A method, not the body of a closure made per pack: V8 compiled the loops
   *  of each such closure anew. */
  #stored(pack: FinishedPack | StagedPack, opts: Op): void {
    // the blobs stay known to this writer alone (pending) until an index file lists their pack
    this.#unindexed.push({ packId: pack.packId, salt: pack.salt, ...compactEntries(pack.entries) });
    this.stats.packsWritten++;
    if (this.#unindexed.length >= (this.#opts.indexEveryPacks ?? 16)) this.#queueIndexWrite(opts);
  }

  /** Stores a staged pack; a pack that could not be stored is removed (the writer fails). */
  async #putStaged(ref: BlobRef, file: string, opts: Op): Promise<void> {
    try {
      await this.#store.putFile!(ref, file, opts);
    } catch (err) {
      await unlink(file).catch(() => undefined);
      throw err;
    }
  }

  #packUploaded(): void {
    this.#packsQueued--;
    if (this.#packsQueued > (this.#opts.uploadConcurrency ?? 2)) return;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops the seal workers: after flush, or after a failure (settle() calls it). A writer
   *  closed with blobs not yet flushed has lost them, and fails from then on. */
  async close(): Promise<void> {
    // a pack left half-built (after a failure) is dropped, and a staged file with it
    let unflushed = this.#pool?.unflushed === true;
    for (const b of Object.values(this.#builders)) {
      if (b.count > 0) unflushed = true;
      b.discard();
    }
    if (unflushed) this.#failure ??= new Error('blob writer closed before its blobs were flushed');
    if (!this.#pool) return;
    await this.#pool.close();
  }

  /** Stops the seal workers and waits for every upload and index write this writer started,
   *  ignoring their outcome: after a failure, nothing may still be writing when the caller
   *  releases its lock. */
  async settle(): Promise<void> {
    await this.close();
    while (this.#starting.size > 0) await Promise.allSettled([...this.#starting]);
    while (this.#uploads.size > 0) await Promise.allSettled([...this.#uploads]);
    await this.#indexChain.catch(() => undefined);
  }

  #queueIndexWrite(opts: Op): void {
    const packs = this.#unindexed;
    if (packs.length === 0) return;
    this.#unindexed = [];
    this.#indexChain = this.#indexChain.then(async () => {
      try {
        // entries stay in their typed arrays (no object per blob: ~50k per index write)
        this.#written.push(await writeIndexFile(this.#store, this.#opts.dataKey, { packs, supersedes: [] }, this.#opts.random, opts));
        // those blobs are in the shared index now, and pending no more (the blobs of packs
        // stored since, or in an index write queued behind this one, stay pending)
        for (const p of packs) {
          this.#index.addCompactPack(p.packId, p.salt, p);
          for (let i = 0; i < p.meta.length / 4; i++) this.#pending.delete(p.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES));
        }
      } catch (err) {
        this.#failure ??= wrapError('write index', err);
      }
    });
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
