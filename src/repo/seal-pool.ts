import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CompressionParams } from '../core/codec.js';
import { CairnError, type ErrorCode } from '../core/errors.js';
import { ID_BYTES, type PackId } from '../core/ids.js';
import { type BlobTypeId, expandEntries } from '../core/pack-format.js';
import type { FinishedPack, StagedPack } from './pack-writer.js';
import { BatchBuffers } from './batch-buffers.js';
import { ClaimSlots } from './batch-claims.js';
import { copyInto } from '../core/bytes.js';
import { workerHeapFromLimits, workerScript } from './worker-script.js';

/** What a seal worker is started with. */
export interface SealWorkerInit {
  readonly dataKey: Uint8Array;
  readonly compression: CompressionParams;
  readonly packTargetBytes: number;
  /** Where packs are built as files (the store's stagingDir); else in memory. */
  readonly stagingDir?: string;
}

/** A seal worker's workerData: its init, the pool's slab, where batches come in, and the claims
 *  by which a batch in the slab is sealed by one thread only (see ClaimSlots). */
export interface SealWorkerData extends SealWorkerInit {
  readonly slab: SharedArrayBuffer;
  readonly claims: SharedArrayBuffer;
}

/** Main thread to seal worker. A batch is blobs laid end to end in the pool's slab from `at`,
 *  or, when the slab had no room (`at` is -1), in `buf`, which is transferred; their ids are in
 *  `ids` (32 bytes each) and their lengths in `lengths`. A batch in the slab has a claim (its
 *  slot in ClaimSlots), and the worker seals it only if it wins the claim: the main thread may
 *  have sealed it meanwhile (assist). -1 for a batch of its own. */
export type ToSealWorker =
  | { t: 'batch'; seq: number; ids: ArrayBuffer; lengths: Uint32Array; at: number; buf?: ArrayBuffer; claim: number }
  | { t: 'flush'; seq: number }
  /** Drop the pack being built (the pool is closing). */
  | { t: 'discard'; seq: number };

/** Seal worker to main thread. A pack's entries travel as `ids` (32 bytes each) and `meta`
 *  (type, offset, length, raw length per entry), its bytes as the first `length` bytes of a
 *  transferred buffer. */
export type FromSealWorker =
  | { t: 'pack'; packId: string; salt: Uint8Array; ids: Uint8Array; meta: Uint32Array; bytes: ArrayBuffer; length: number }
  /** A pack built as a file in the staging folder. */
  | { t: 'staged'; packId: string; salt: Uint8Array; ids: Uint8Array; meta: Uint32Array; file: string; sizeBytes: number }
  /** A batch sealed: its buffer comes back when it had one of its own. */
  | { t: 'sealed'; seq: number; sealed: Uint32Array; buf?: ArrayBuffer }
  | { t: 'failed'; seq: number; message: string; code?: ErrorCode; hint?: string }
  | { t: 'flushed'; seq: number }
  | { t: 'discarded'; seq: number };

/** Bytes of blobs gathered into one message: few messages for many small files, and a batch
 *  small enough that both workers stay fed. */
const BATCH_BYTES = 1024 * 1024;
/** Blobs in one batch at most. */
const BATCH_BLOBS = 512;
/** A seal worker's young generation, in MiB (see #spawn): V8 makes it 2 MiB of new space. */
const WORKER_YOUNG_GENERATION_MB = 2;
/** The slab batches are written into (see SharedSlab): the backup's byte budget (8 MiB of blobs
 *  handed over and not yet sealed) and room for the open batch and for runs left between
 *  batches sealed out of order. A batch the slab has no run for gets a buffer of its own. */
const SLAB_BYTES = 12 * 1024 * 1024;
/** Buffers (of BATCH_BYTES) kept for batches the slab had no room for. */
const SPARE_BUFFERS = 2;
/** How long close() waits for a worker to drop its pack before it stops the worker anyway. */
const DISCARD_WAIT_MS = 2000;

/** Seal workers for a machine: one per core besides the main thread's, which walks, reads and
 *  hashes; the workers compress and seal, most of a first backup's cpu. On 2 cores one worker
 *  beat two (18.3 s vs 19.3-22.8 s on 2.9 GB: three busy threads on two cores only add
 *  switching; native-bench/RESULTS.md). */
export function defaultSealWorkers(): number {
  return Math.max(1, Math.min(7, availableParallelism() - 1));
}

/** Called once per blob added with addThen(): with its sealed length, or with the error that
 *  failed it (then `sealedBytes` is 0). Must not throw: it runs inside the pool's own handlers. */
export type SealDone = (err: unknown, sealedBytes: number) => void;

interface Batch {
  /** Where the blobs are written: a run of the slab, or a buffer of its own. */
  buf: Buffer;
  /** buf's offset in the slab, or -1 when buf is a buffer of its own. */
  at: number;
  used: number;
  lengths: number[];
  done: SealDone[];
  /** The blobs' ids, copied out of the open batch's #ids when it closes. */
  ids?: ArrayBuffer;
  /** Set when sent: its message's seq, the worker it went to, and its claim (-1 for none). It
   *  is in flight while its worker's `batches` has it (until sealed here or answered). */
  seq?: number;
  slot?: Slot;
  claim?: number;
}

interface Slot {
  readonly worker: Worker;
  /** Bytes sent and not yet sealed (by the worker, or here by assist). */
  outstanding: number;
  readonly batches: Map<number, Batch>;
  readonly flushes: Map<number, { resolve(): void; reject(err: unknown): void }>;
  readonly discards: Map<number, () => void>;
  exited: boolean;
}

/** True while a sent batch is neither sealed here nor answered by its worker. */
function inFlight(batch: Batch): boolean {
  return batch.slot!.batches.has(batch.seq!);
}

/**
 * Compresses and seals data blobs into packs on worker threads. Each worker builds its own pack
 * (with its own salt and subkey) and hands it back finished, so the main thread's share of a
 * blob is one copy into a batch. add() copies the blob before it returns: the caller may reuse
 * its buffer at once. Every batch is sent when it closes; assist() seals on the caller's thread
 * the newest one in the slab no worker has started (ClaimSlots). Any failure (a blob that does
 * not compress, a worker that dies) fails every blob in flight and every later call.
 */
export class SealPool {
  readonly #init: SealWorkerInit;
  readonly #size: number;
  readonly #onPack: (pack: FinishedPack | StagedPack) => void;
  readonly #slots: Slot[] = [];
  #open: Batch | undefined;
  /** Batches sent with a claim, oldest first, that assist() may take: those no longer in flight
   *  are dropped from the front as answers come, and from the back by assist(). */
  readonly #takeable: Batch[] = [];
  readonly #claims = new ClaimSlots();
  /** The open batch's ids (one batch is open at a time; each send copies out what it holds). */
  readonly #ids = Buffer.allocUnsafeSlow(BATCH_BLOBS * ID_BYTES);
  readonly #buffers: BatchBuffers;
  #sendScheduled = false;
  #seq = 0;
  #failure: { err: unknown } | undefined;
  #closed = false;
  /** Blobs added, and how many of them the last completed flush covered. */
  #added = 0;
  #flushed = 0;

  /** `slabBytes`: the slab's size (tests give a small one). */
  constructor(init: SealWorkerInit, workers: number, onPack: (pack: FinishedPack | StagedPack) => void, slabBytes = SLAB_BYTES) {
    if (!(workers >= 1)) throw new RangeError(`seal workers must be ≥ 1, got ${workers}`);
    this.#buffers = new BatchBuffers(BATCH_BYTES, slabBytes, SPARE_BUFFERS);
    this.#init = init;
    this.#size = workers;
    this.#onPack = onPack;
  }

  /** Queues one data blob; resolves with its sealed length once it is in a pack. */
  add(type: BlobTypeId, id: Uint8Array, data: Uint8Array): Promise<number> {
    return new Promise<number>((resolve, reject) => this.addThen(type, id, data, (err, n) => (err === undefined ? resolve(n) : reject(err))));
  }

  /** add() without a promise, for a backup's ~150k blobs: `done` is called once the blob is in
   *  a pack, or has failed. Throws, and never calls `done`, when the pool has failed or is
   *  closed. */
  addThen(type: BlobTypeId, id: Uint8Array, data: Uint8Array, done: SealDone): void {
    if (this.#failure) throw this.#failure.err;
    if (this.#closed) throw new Error('seal pool is closed');
    void type; // workers seal data blobs only; the type is part of the call for the reader
    this.#added++;
    const batch = this.#batchFor(data.length);
    // a blob read into room from reserve() is where it goes already
    if (data.buffer !== batch.buf.buffer || data.byteOffset !== batch.buf.byteOffset + batch.used) copyInto(batch.buf, batch.used, data);
    this.#ids.set(id, batch.lengths.length * ID_BYTES);
    batch.used += data.length;
    batch.lengths.push(data.length);
    batch.done.push(done);
    if (batch.used >= BATCH_BYTES) this.#close();
    else if (!this.#sendScheduled) {
      // a batch that does not fill goes out after this turn of the event loop
      this.#sendScheduled = true;
      setImmediate(() => {
        this.#sendScheduled = false;
        this.#close();
      });
    }
  }

  /** Room for a blob of up to `n` bytes where addThen() would copy it to: a caller that reads a
   *  blob straight into it (a backup's small files) passes the part it filled to addThen(), which
   *  then copies nothing, before any other call on the pool. A blob not added leaves nothing to
   *  undo. Throws as addThen() does. The room may be detached once addThen() returns (a batch
   *  with a buffer of its own is transferred to its worker when it fills): read what it holds,
   *  its length too, before. */
  reserve(n: number): Buffer {
    if (this.#failure) throw this.#failure.err;
    if (this.#closed) throw new Error('seal pool is closed');
    const batch = this.#batchFor(n);
    return batch.buf.subarray(batch.used, batch.used + n);
  }

  /** The open batch, with room for a blob of `n` bytes: the one open, or a new one (the open one
   *  is closed first). */
  #batchFor(n: number): Batch {
    let batch = this.#open;
    if (batch && (batch.used + n > batch.buf.length || batch.lengths.length >= BATCH_BLOBS)) {
      this.#close();
      batch = undefined;
    }
    if (!batch) {
      batch = { ...this.#buffers.room(n), used: 0, lengths: [], done: [] };
      this.#open = batch;
    }
    return batch;
  }

  /**
   * Seals on this thread one batch sent to a worker that no worker has started: `seal`
   * compresses and seals the batch's blobs as a worker does (sealBatch in pack-writer.ts;
   * copying them: the batch's buffer is reused) and returns their sealed lengths, which their
   * callbacks then get. Takes the newest such batch (a worker takes its oldest). Returns false
   * when there was none. A seal that throws fails the batch's blobs with its error, and the
   * pool, as a worker's failure does. For a caller that would otherwise wait for the workers: on
   * 2 cores a first backup's main thread idled ~30% of the run waiting for its one seal worker
   * (docs/decisions.md §33).
   */
  assist(seal: (ids: Uint8Array, lengths: readonly number[], buf: Uint8Array) => ArrayLike<number>): boolean {
    if (this.#failure) return false;
    let batch: Batch | undefined;
    // a batch a worker has claimed is dropped here too: it is the worker's until its answer
    while ((batch = this.#takeable.pop())) if (inFlight(batch) && this.#claims.claimHere(batch.claim!, batch.seq!)) break;
    if (!batch) return false;
    const slot = batch.slot!;
    slot.batches.delete(batch.seq!);
    slot.outstanding -= batch.used;
    let sealed: ArrayLike<number>;
    try {
      sealed = seal(new Uint8Array(batch.ids!), batch.lengths, batch.buf.subarray(0, batch.used));
    } catch (err) {
      for (const d of batch.done) d(err, 0);
      this.#fail(err);
      return true;
    }
    this.#claims.give(batch.claim!);
    this.#buffers.release(batch.at, batch.used, batch.buf.buffer);
    for (let k = 0; k < batch.done.length; k++) batch.done[k]!(undefined, sealed[k]!);
    return true;
  }

  /** Seals every blob added so far and has every worker finish its pack (handed to onPack before
   *  this resolves). */
  async flush(): Promise<void> {
    const added = this.#added;
    this.#close();
    this.#throwIfFailed();
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve, reject) => {
            const seq = ++this.#seq;
            slot.flushes.set(seq, { resolve, reject });
            slot.worker.postMessage({ t: 'flush', seq } satisfies ToSealWorker);
          }),
      ),
    );
    this.#throwIfFailed();
    this.#flushed = added;
  }

  /** Bytes of the slab lent out to batches not yet sealed. */
  get slabBytesInUse(): number {
    return this.#buffers.slabBytesInUse;
  }

  /** True when blobs were added since the last flush: closing now would lose them. */
  get unflushed(): boolean {
    return this.#added > this.#flushed;
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.err;
  }

  /** Stops the workers; blobs still in flight fail, and so do later calls. Each worker first
   *  drops the pack it was building (a staged file is removed), unless it fails to answer
   *  within DISCARD_WAIT_MS. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new Error('seal pool closed'));
    const slots = this.#slots.splice(0);
    await Promise.all(
      slots.map(async (slot) => {
        if (!slot.exited) await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, DISCARD_WAIT_MS).unref();
          slot.discards.set(++this.#seq, () => {
            clearTimeout(timer);
            resolve();
          });
          slot.worker.once('exit', resolve);
          slot.worker.postMessage({ t: 'discard', seq: this.#seq } satisfies ToSealWorker);
        });
        await slot.worker.terminate();
      }),
    );
  }

  /** Closes the open batch and sends it. A batch that holds nothing (reserve() opened it, and its
   *  room was not filled) gives its room back. */
  #close(): void {
    const batch = this.#open;
    if (!batch) return;
    this.#open = undefined;
    if (batch.lengths.length === 0) {
      this.#buffers.release(batch.at, batch.buf.length, batch.buf.buffer);
      return;
    }
    if (this.#failure) {
      for (const d of batch.done) d(this.#failure.err, 0);
      return;
    }
    batch.ids = (this.#ids.buffer as ArrayBuffer).slice(0, batch.lengths.length * ID_BYTES);
    batch.buf = this.#buffers.shrink(batch, batch.used);
    this.#post(this.#pick(), batch);
  }

  #post(slot: Slot, batch: Batch): void {
    const seq = ++this.#seq;
    batch.seq = seq;
    batch.slot = slot;
    slot.outstanding += batch.used;
    slot.batches.set(seq, batch);
    const ids = batch.ids!;
    const lengths = Uint32Array.from(batch.lengths);
    if (batch.at >= 0) {
      // the slab is shared: the worker reads the batch in place, and assist() may take it back
      // (the ids are copied, not transferred: assist needs them)
      const claim = (batch.claim = this.#claims.take(seq));
      if (claim >= 0) this.#takeable.push(batch);
      slot.worker.postMessage({ t: 'batch', seq, ids, lengths, at: batch.at, claim } satisfies ToSealWorker);
      return;
    }
    batch.claim = -1;
    // transfer the whole buffer when the batch fills most of it (it comes back with the answer);
    // else copy out what it holds and keep the buffer (allocUnsafeSlow gives each batch buffer
    // an ArrayBuffer of its own, never a shared one)
    const whole = batch.buf.buffer as ArrayBuffer;
    let buf = whole;
    if (batch.used <= batch.buf.length / 2) {
      buf = whole.slice(0, batch.used);
      this.#buffers.giveBack(whole);
    }
    slot.worker.postMessage({ t: 'batch', seq, ids, lengths, at: -1, buf, claim: -1 } satisfies ToSealWorker, [buf, ids]);
  }

  /** The worker with the fewest bytes outstanding, started on first need. */
  #pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.outstanding < best.outstanding) best = s;
    if (best && (best.outstanding === 0 || this.#slots.length >= this.#size)) return best;
    return this.#spawn();
  }

  #spawn(): Slot {
    // a small young generation: a worker's garbage is a few views and entries per blob, and the
    // default (16 MiB semi-spaces) only held pages (measured: 25 MiB of new space at peak)
    workerHeapFromLimits();
    const worker = new Worker(workerScript(import.meta.url, 'seal-worker.js'), { workerData: { ...this.#init, slab: this.#buffers.slab, claims: this.#claims.buffer } satisfies SealWorkerData, name: 'cairn-seal', resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    // a worker never keeps the process alive: an abandoned pool must not hang the CLI
    worker.unref();
    const slot: Slot = { worker, outstanding: 0, batches: new Map(), flushes: new Map(), discards: new Map(), exited: false };
    worker.on('message', (msg: FromSealWorker) => this.#onMessage(slot, msg));
    worker.on('error', (err) => this.#fail(new Error(`seal worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      slot.exited = true;
      if (!this.#closed) this.#fail(new Error(`seal worker exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }

  #onMessage(slot: Slot, msg: FromSealWorker): void {
    switch (msg.t) {
      case 'pack': {
        this.#onPack({ packId: msg.packId as PackId, salt: msg.salt, entries: expandEntries(msg), bytes: Buffer.from(msg.bytes, 0, msg.length) });
        return;
      }
      case 'staged':
        this.#onPack({ packId: msg.packId as PackId, salt: msg.salt, entries: expandEntries(msg), file: msg.file, sizeBytes: msg.sizeBytes });
        return;
      case 'sealed': {
        const b = slot.batches.get(msg.seq);
        if (!b) return;
        slot.batches.delete(msg.seq);
        slot.outstanding -= b.used;
        this.#claims.give(b.claim!);
        while (this.#takeable.length > 0 && !inFlight(this.#takeable[0]!)) this.#takeable.shift();
        this.#buffers.release(b.at, b.used, msg.buf);
        for (let i = 0; i < b.done.length; i++) b.done[i]!(undefined, msg.sealed[i]!);
        return;
      }
      case 'failed':
        this.#fail(msg.code ? new CairnError(msg.code, msg.message, msg.hint !== undefined ? { hint: msg.hint } : {}) : new Error(msg.message));
        return;
      case 'discarded':
        slot.discards.get(msg.seq)?.();
        slot.discards.delete(msg.seq);
        return;
      case 'flushed':
        slot.flushes.get(msg.seq)?.resolve();
        slot.flushes.delete(msg.seq);
        return;
    }
  }

  #fail(err: unknown): void {
    this.#failure ??= { err };
    const failure = this.#failure.err;
    for (const slot of this.#slots) {
      for (const b of slot.batches.values()) for (const d of b.done) d(failure, 0);
      slot.batches.clear();
      slot.outstanding = 0;
      for (const f of slot.flushes.values()) f.reject(failure);
      slot.flushes.clear();
    }
    this.#takeable.length = 0;
    const open = this.#open;
    this.#open = undefined;
    if (open) for (const d of open.done) d(failure, 0);
  }
}
