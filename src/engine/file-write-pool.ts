import { Worker } from 'node:worker_threads';
import { BatchBuffers } from '../repo/batch-buffers.js';
import { workerScript } from '../repo/worker-script.js';

/** Numbers per file in a batch's `meta`: data offset and length in `buf`, the data's offset in
 *  the file, the file's size, mode, uid, gid and mtime (seconds). */
export const FIELDS = 8;

/** Main thread to worker: a batch of whole files. `buf` (transferred) holds their data end to
 *  end, `paths` their paths' bytes end to end. */
export interface ToFileWriter {
  seq: number;
  buf: ArrayBuffer;
  paths: ArrayBuffer;
  pathLengths: Uint32Array;
  meta: Float64Array;
  owners: boolean;
}

/** A file of a batch that failed; `created` when it exists (short or without its metadata). */
export interface FileWriteFailure {
  i: number;
  message: string;
  code?: string;
  created: boolean;
}

/** Worker to main thread: a batch is done; `buf` comes back for the next one. */
export interface FromFileWriter {
  seq: number;
  failed: FileWriteFailure[];
  buf: ArrayBuffer;
}

/** One whole file to write: created (it must not exist), its data written at `offset`,
 *  truncated to `size` (trailing holes stay sparse), then owner, mode and mtime set. */
export interface WholeFile {
  readonly path: Uint8Array;
  readonly data: Uint8Array;
  readonly offset: number;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

/** How a file ended: undefined when written, else the error and whether the file exists. */
export type WholeFileDone = (err: (Error & { code?: string }) | undefined, created: boolean) => void;

/** Data bytes gathered into one batch. */
const BATCH_BYTES = 1024 * 1024;
/** Files in one batch at most: ~30 ms of file creation, so a batch is never long. */
const BATCH_FILES = 512;
/** Data bytes sent and not yet written, across workers, past which write() callers wait. */
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** Batches in flight per worker past which callers wait: one being written, one queued. */
const MAX_BATCHES_PER_WORKER = 2;

interface Batch {
  buf: Buffer;
  used: number;
  paths: Buffer;
  pathsUsed: number;
  pathLengths: number[];
  meta: number[];
  done: WholeFileDone[];
}

interface Slot {
  readonly worker: Worker;
  readonly batches: Map<number, { bytes: number; done: WholeFileDone[] }>;
}

/**
 * Creates and writes whole files on worker threads with synchronous system calls. A file
 * written through libuv's pool costs 5-6 round trips (open, write, truncate, chmod, utimes,
 * close), each a thread wake-up and a callback on the main thread; on a restore of 150k small
 * files those took more of the main thread than decrypting and decompressing (docs/decisions.md
 * §29). Here a batch of files is one message each way. write() copies the file's data and path
 * before it returns.
 */
export class FileWritePool {
  readonly #size: number;
  readonly #owners: boolean;
  readonly #script: URL;
  readonly #slots: Slot[] = [];
  #open: Batch | undefined;
  #sendScheduled = false;
  #seq = 0;
  #inFlight = 0;
  #next = 0;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #failure: Error | undefined;
  #broken: Error | undefined;
  #closed = false;
  /** Two per worker: a batch being written and one queued. */
  readonly #buffers: BatchBuffers;

  /** `owners`: set each file's uid and gid (restores as root). `script`: the worker's script
   *  (tests give one that fails). */
  constructor(workers: number, owners: boolean, script: URL = workerScript(import.meta.url, 'file-write-worker.js')) {
    if (!(workers >= 1)) throw new RangeError(`file-write workers must be ≥ 1, got ${workers}`);
    this.#size = workers;
    this.#owners = owners;
    this.#script = script;
    this.#buffers = new BatchBuffers(BATCH_BYTES, MAX_BATCHES_PER_WORKER * workers);
  }

  /** True while write() may be called without waiting for room first. */
  get hasRoom(): boolean {
    return this.#inFlight < MAX_IN_FLIGHT_BYTES && this.#batchesInFlight() < this.#size * MAX_BATCHES_PER_WORKER;
  }

  /** Resolves once there is room (see hasRoom), or the pool has failed. */
  room(): Promise<void> {
    if (this.hasRoom || this.#failure) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Queues a file; `done` runs once it is written or has failed. */
  write(file: WholeFile, done: WholeFileDone): void {
    if (this.#failure || this.#closed) {
      done(this.#failure ?? new Error('file-write pool is closed'), false);
      return;
    }
    let batch = this.#open;
    if (batch && (batch.used + file.data.length > batch.buf.length || batch.done.length >= BATCH_FILES)) {
      this.#send();
      batch = undefined;
    }
    if (!batch) {
      batch = { buf: this.#buffers.take(file.data.length), used: 0, paths: Buffer.allocUnsafe(64 * 1024), pathsUsed: 0, pathLengths: [], meta: [], done: [] };
      this.#open = batch;
    }
    if (batch.pathsUsed + file.path.length > batch.paths.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * batch.paths.length, batch.pathsUsed + file.path.length));
      batch.paths.copy(bigger, 0, 0, batch.pathsUsed);
      batch.paths = bigger;
    }
    batch.paths.set(file.path, batch.pathsUsed);
    batch.pathsUsed += file.path.length;
    batch.pathLengths.push(file.path.length);
    batch.buf.set(file.data, batch.used);
    batch.meta.push(batch.used, file.data.length, file.offset, file.size, file.mode, file.uid, file.gid, file.mtime);
    batch.used += file.data.length;
    batch.done.push(done);
    if (batch.used >= BATCH_BYTES || batch.done.length >= BATCH_FILES) this.#send();
    else if (!this.#sendScheduled) {
      // a batch that does not fill goes out after this turn of the event loop
      this.#sendScheduled = true;
      setImmediate(() => {
        this.#sendScheduled = false;
        this.#send();
      });
    }
  }

  /** Sends what is queued and waits until every file handed over so far (and meanwhile) is
   *  done. */
  async drain(): Promise<void> {
    for (;;) {
      this.#send();
      if (this.#batchesInFlight() === 0) return;
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  /** Why the pool stopped working, when a worker failed (not when it was closed): every file
   *  in flight then failed with this error, and a caller should fail as a whole. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** Stops the workers (after drain(): files still in flight fail). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new Error('file-write pool closed'));
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  #batchesInFlight(): number {
    let n = 0;
    for (const s of this.#slots) n += s.batches.size;
    return n;
  }

  #send(): void {
    const batch = this.#open;
    if (!batch || batch.done.length === 0) return;
    this.#open = undefined;
    if (this.#failure) {
      for (const d of batch.done) d(this.#failure, false);
      return;
    }
    const slot = this.#pick();
    const seq = ++this.#seq;
    slot.batches.set(seq, { bytes: batch.used, done: batch.done });
    this.#inFlight += batch.used;
    const paths = batch.paths.buffer.slice(batch.paths.byteOffset, batch.paths.byteOffset + batch.pathsUsed) as ArrayBuffer;
    const msg: ToFileWriter = { seq, buf: batch.buf.buffer as ArrayBuffer, paths, pathLengths: Uint32Array.from(batch.pathLengths), meta: Float64Array.from(batch.meta), owners: this.#owners };
    slot.worker.postMessage(msg, [msg.buf, paths]);
  }

  /** Workers in turn, started on first need. */
  #pick(): Slot {
    if (this.#slots.length < this.#size) return this.#spawn();
    const slot = this.#slots[this.#next % this.#slots.length]!;
    this.#next++;
    return slot;
  }

  #spawn(): Slot {
    // the worker's garbage is a few views per batch: a small young generation is plenty
    const worker = new Worker(this.#script, { name: 'cairn-write', resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.unref();
    const slot: Slot = { worker, batches: new Map() };
    worker.on('message', (msg: FromFileWriter) => this.#onDone(slot, msg));
    worker.on('error', (err) => this.#break(new Error(`file-write worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#break(new Error(`file-write worker exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }

  #onDone(slot: Slot, msg: FromFileWriter): void {
    const b = slot.batches.get(msg.seq);
    if (!b) return;
    slot.batches.delete(msg.seq);
    this.#inFlight -= b.bytes;
    this.#buffers.giveBack(msg.buf);
    let k = 0;
    for (let i = 0; i < b.done.length; i++) {
      const f = msg.failed[k];
      if (f?.i === i) {
        k++;
        b.done[i]!(Object.assign(new Error(f.message), f.code !== undefined ? { code: f.code } : {}), f.created);
      } else b.done[i]!(undefined, true);
    }
    this.#wake();
  }

  #wake(): void {
    if (this.hasRoom || this.#failure) {
      const room = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const r of room) r();
    }
    if (this.#batchesInFlight() === 0) {
      const idle = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const r of idle) r();
    }
  }

  #break(err: Error): void {
    this.#broken ??= err;
    this.#fail(err);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const slot of this.#slots) {
      for (const b of slot.batches.values()) for (const d of b.done) d(this.#failure, false);
      slot.batches.clear();
    }
    this.#inFlight = 0;
    const open = this.#open;
    this.#open = undefined;
    if (open) for (const d of open.done) d(this.#failure, false);
    this.#wake();
  }
}
