import { Worker } from 'node:worker_threads';
import { BatchBuffers } from '../repo/batch-buffers.js';
import { copyInto } from '../core/bytes.js';
import { ID_BYTES } from '../core/ids.js';
import { PACK_SALT_BYTES } from '../core/pack-format.js';
import type { SealedBlobInfo } from '../repo/blob-reader.js';
import { workerHeapFromLimits, workerScript } from '../repo/worker-script.js';
import type { FinalMeta } from './file-finish.js';

/** What an op of a batch does (its `meta` field OP). */
export const Op = {
  /** Create the file (it must not exist), write its content, finish it (size, owner, mode,
   *  mtime) and close it. */
  whole: 0,
  /** Write content into a file of several parts, created by its first part. */
  part: 1,
  /** A file's last part: write it, then finish and close the file. */
  last: 2,
  /** Give up a file of several parts: close it and remove it if this worker created it. */
  abandon: 3,
  /** Write content into a file of several parts that exists (another worker may have made it
   *  and may be writing other parts): opened for this write and closed after, unless this
   *  worker holds it open. */
  spread: 4,
  /** Finish a file of several parts whose parts are all written (by any worker), and close it. */
  finish: 5,
} as const;

/** Numbers per op in a batch's `meta`: the op's blob (its number in the batch, -1 for none),
 *  its offset in the file, the file's size, mode, uid, gid and mtime (seconds; these five only
 *  for whole files and last parts), the file's key (parts) and the op (Op). */
export const FIELDS = 9;
export const BLOB = 0;
export const OFFSET = 1;
/** The first of size, mode, uid, gid and mtime. */
export const META = 2;
export const KEY = 7;
export const OP = 8;
/** Numbers per blob in a batch's `blobs`: offset and length in `buf`, raw length, type, and 1
 *  when sealed (else its bytes are the content). */
export const BLOB_FIELDS = 5;
export const BLOB_AT = 0;
export const BLOB_LENGTH = 1;
export const BLOB_RAW = 2;
export const BLOB_TYPE = 3;
export const BLOB_SEALED = 4;
/** Bytes per blob in a batch's `blobIds`: the id, then the pack's salt. */
export const BLOB_ID_BYTES = ID_BYTES + PACK_SALT_BYTES;

/** Main thread to worker: a batch of blobs and the ops that write them. The blobs' bytes lie end
 *  to end in the pool's slab from `at`, or, when the slab had no room (`at` is -1), in `buf`
 *  (transferred); `paths` holds the ops' paths' bytes end to end. */
export interface ToFileWriter {
  seq: number;
  at: number;
  buf?: ArrayBuffer;
  blobs: Float64Array;
  blobIds: Uint8Array;
  /** The pack of each sealed blob (for its key, and for messages). */
  packIds: string[];
  paths: ArrayBuffer;
  pathLengths: Uint32Array;
  meta: Float64Array;
  owners: boolean;
}

/** What a worker is started with: the keys that open and verify sealed blobs (none for a pool
 *  given only plain content). */
export interface FileWriterInit {
  readonly dataKey?: Uint8Array;
  readonly idKey?: Uint8Array;
}

/** A worker's workerData: its init and the pool's slab, where batches come in. */
export interface FileWriterData extends FileWriterInit {
  readonly slab: SharedArrayBuffer;
}

/** An op of a batch that failed; `created` when its file exists (short or without its
 *  metadata). A worker removes a file of several parts that failed, so that is never set for
 *  a part. */
export interface FileWriteFailure {
  i: number;
  message: string;
  code?: string;
  created: boolean;
}

/** Worker to main thread: a batch is done, its `buf` (if it had one) comes back for the next
 *  one; `created` lists the ops that created their file. */
export interface FromFileWriter {
  seq: number;
  failed: FileWriteFailure[];
  created: number[];
  buf?: ArrayBuffer;
}

/** A blob as read from its pack: the worker decrypts, decompresses and verifies it before it
 *  writes it. */
export interface SealedBlob extends SealedBlobInfo {
  readonly id: Uint8Array;
  readonly sealed: Uint8Array;
}

/** What a file or part holds: a sealed blob, or plain bytes. */
export type Content = SealedBlob | Uint8Array;

/** Where a write goes. */
interface Placed {
  readonly path: Uint8Array;
}

/** One whole file to write: created (it must not exist), its content written at `offset`,
 *  truncated to `size` (trailing holes stay sparse), then owner, mode and mtime set. */
export interface WholeFile extends Placed {
  /** None for a file with no data (empty, or one hole). */
  readonly content?: Content;
  readonly offset: number;
  readonly size: number;
  readonly mode: number;
  /** -1 and -1: the owner it is created with is its own (see FinalMeta). */
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

/** Part of a file of several parts: `content` written at `offset`. The first part of a `key`
 *  creates the file (it must not exist); the one with `last` finishes it as a whole file is
 *  finished. Parts go to the worker of the file's first part, which keeps it open between
 *  them (at most 128 open, and reopens one it had to close); a `spread` part (the file exists:
 *  its first part said it created it) goes to the least busy worker, like a whole file, so
 *  the parts of a large file are written on every worker at once. A file whose spread parts
 *  are not all written when its last part is handed over is finished by finish(), once they
 *  are. */
export interface FilePart extends Placed {
  /** Names the file among all the pool's files of several parts. */
  readonly key: number;
  readonly content: Content;
  readonly offset: number;
  readonly last?: FinalMeta;
  readonly spread?: boolean;
}

/** How an op ended: undefined when written, else the error; and whether it created its file
 *  (for a failed whole file: whether the file exists). */
export type WholeFileDone = (err: (Error & { code?: string }) | undefined, created: boolean) => void;

/** Data bytes gathered into one batch. */
const BATCH_BYTES = 1024 * 1024;
/** The slab batches are written into (see SharedSlab): the bytes in flight (MAX_IN_FLIGHT_BYTES),
 *  a batch being filled per worker, and a blob larger than a batch. A batch the slab has no run
 *  for gets a buffer of its own. */
const SLAB_BYTES = 10 * 1024 * 1024;
/** Files in one batch at most: ~30 ms of file creation, so a batch is never long. */
const BATCH_FILES = 512;
/** Data bytes sent and not yet written, across workers, past which write() callers wait. */
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** Batches in flight per worker past which callers wait: one being written, one queued. */
const MAX_BATCHES_PER_WORKER = 2;

interface Batch {
  /** Where the blobs are written: a run of the slab, or a buffer of its own. */
  buf: Buffer;
  /** buf's offset in the slab, or -1 when buf is a buffer of its own. */
  at: number;
  used: number;
  blobs: number[];
  blobIds: Buffer;
  packIds: string[];
  /** The content last added, and its number: the next op of the same content reuses it. */
  lastContent: Content | undefined;
  lastBlob: number;
  paths: Buffer;
  pathsUsed: number;
  pathLengths: number[];
  meta: number[];
  done: WholeFileDone[];
}

interface Slot {
  readonly worker: Worker;
  readonly batches: Map<number, { bytes: number; at: number; done: WholeFileDone[] }>;
  /** The batch being filled for this worker. */
  open: Batch | undefined;
  /** Where a batch gathers its paths and blob ids, copied out when it is sent: reused by the
   *  next batch (a new 64 KiB buffer per batch was ~90 MiB of garbage on a restore). */
  paths: Buffer;
  blobIds: Buffer;
  /** Batches sent to this worker so far. */
  sent: number;
}

/**
 * Opens blobs and creates and writes files on worker threads, with synchronous system calls. A
 * file written through libuv's pool costs 5-6 round trips (open, write, truncate, chmod, utimes,
 * close), each a thread wake-up and a callback on the main thread; on a restore of 150k small
 * files those took more of the main thread than decrypting and decompressing (docs/decisions.md
 * §29). Here a batch of ops is one message each way. The workers also open (decrypt, decompress,
 * verify) sealed blobs and write files of several parts: on the main thread those were its
 * critical path while the workers waited for it (§31). write() and writePart() copy the content
 * and path before they return.
 */
export class FileWritePool {
  readonly #size: number;
  readonly #owners: boolean;
  readonly #init: FileWriterInit;
  readonly #script: URL;
  /** One per worker, started on first need. */
  readonly #slots: (Slot | undefined)[] = [];
  /** The worker whose batch is being filled: ops go to it until that batch is sent. */
  #filling: Slot | undefined;
  /** The worker of each file of several parts that has one: its later parts and its end go
   *  there, in order (the worker holds it open). */
  readonly #partsAt = new Map<number, Slot>();
  #sendScheduled = false;
  #seq = 0;
  #inFlight = 0;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #failure: Error | undefined;
  #broken: Error | undefined;
  #closed = false;
  /** Where batches are written: the slab, and for batches it has no room for, one buffer per
   *  worker and two larger kept. */
  readonly #buffers: BatchBuffers;

  /** `owners`: set each file's uid and gid (restores as root). `init`: the keys of sealed
   *  content. `script`: the worker's script (tests give one that fails). `slabBytes`: the
   *  slab's size (tests give a small one). */
  constructor(workers: number, owners: boolean, init: FileWriterInit = {}, script: URL = workerScript(import.meta.url, 'file-write-worker.js'), slabBytes = SLAB_BYTES) {
    if (!(workers >= 1)) throw new RangeError(`file-write workers must be ≥ 1, got ${workers}`);
    this.#size = workers;
    this.#owners = owners;
    this.#init = init;
    this.#script = script;
    this.#buffers = new BatchBuffers(BATCH_BYTES, slabBytes, workers, 2);
  }

  /** Bytes of the slab lent out to batches not yet written. */
  get slabBytesInUse(): number {
    return this.#buffers.slabBytesInUse;
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

  /** Queues a whole file; `done` runs once it is written or has failed. A sealed blob is
   *  opened by the worker, and one that does not open or verify fails the op (before the file
   *  is created). */
  write(file: WholeFile, done: WholeFileDone): void {
    this.#queue(file, file.content, [file.offset, file.size, file.mode, file.uid, file.gid, file.mtime, 0, Op.whole], done);
  }

  /** Queues a part of a file of several parts; `done` runs once it is written or has failed.
   *  After a part failed, its worker skips the file's later parts (they fail too), and has
   *  removed the file if it made it; a spread part that failed elsewhere leaves the file to
   *  abandon(). Parts of the same content queued one after another share its bytes in the
   *  batch. */
  writePart(part: FilePart, done: WholeFileDone): void {
    const m = part.last;
    if (part.spread === true && m) throw new RangeError('a spread part cannot finish its file: finish() does, once every part is written');
    this.#queue(part, part.content, [part.offset, m?.size ?? 0, m?.mode ?? 0, m?.uid ?? 0, m?.gid ?? 0, m?.mtime ?? 0, part.key, m ? Op.last : part.spread === true ? Op.spread : Op.part], done);
  }

  /** Finishes a file of several parts once every part of it is written (`done` has run for
   *  each), as a last part would: on the worker of its first part, after what was queued there
   *  before. */
  finish(file: { path: Uint8Array; key: number; last: FinalMeta }, done: WholeFileDone): void {
    const m = file.last;
    this.#queue(file, undefined, [0, m.size, m.mode, m.uid, m.gid, m.mtime, file.key, Op.finish], done);
  }

  /** Gives up a file of several parts (its key as its parts had): the worker closes it and
   *  removes it if it created it, after the parts queued before. */
  abandon(file: { path: Uint8Array; key: number }): void {
    this.#queue(file, undefined, [0, 0, 0, 0, 0, 0, file.key, Op.abandon], () => undefined);
  }

  #queue(at: Placed, content: Content | undefined, fields: number[], done: WholeFileDone): void {
    if (this.#failure || this.#closed) {
      done(this.#failure ?? new Error('file-write pool is closed'), false);
      return;
    }
    const bytes = content === undefined ? 0 : content instanceof Uint8Array ? content.length : content.sealed.length;
    const op = fields[OP - OFFSET]!;
    const key = fields[KEY - OFFSET]!;
    let slot = op === Op.whole || op === Op.spread ? undefined : this.#partsAt.get(key);
    if (op === Op.last || op === Op.abandon || op === Op.finish) this.#partsAt.delete(key);
    if (!slot) {
      // a batch at a time, each to the worker with the least in flight when it begins: ops had
      // gone by folder, and a restore hands over one folder after another, so one worker got
      // most of the work for stretches while the other idled (docs/decisions.md §39)
      slot = this.#filling;
      if (!slot?.open || full(slot.open, content, bytes)) {
        if (slot) this.#send(slot);
        slot = this.#idlest();
      }
      this.#filling = slot;
      if (op === Op.part) this.#partsAt.set(key, slot);
    }
    let batch = slot.open;
    if (batch && full(batch, content, bytes)) {
      this.#send(slot);
      batch = undefined;
    }
    if (!batch) {
      batch = { ...this.#buffers.room(bytes), used: 0, blobs: [], blobIds: slot.blobIds, packIds: [], lastContent: undefined, lastBlob: -1, paths: slot.paths, pathsUsed: 0, pathLengths: [], meta: [], done: [] };
      slot.open = batch;
    }
    const blob = content === undefined ? -1 : batch.lastContent === content ? batch.lastBlob : addContent(batch, content);
    const path = at.path;
    if (batch.pathsUsed + path.length > batch.paths.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * batch.paths.length, batch.pathsUsed + path.length));
      batch.paths.copy(bigger, 0, 0, batch.pathsUsed);
      batch.paths = bigger;
    }
    batch.paths.set(path, batch.pathsUsed);
    batch.pathsUsed += path.length;
    batch.pathLengths.push(path.length);
    batch.meta.push(blob, ...fields);
    batch.done.push(done);
    if (batch.used >= BATCH_BYTES || batch.done.length >= BATCH_FILES) this.#send(slot);
    else if (!this.#sendScheduled) {
      // a batch that does not fill goes out after this turn of the event loop
      this.#sendScheduled = true;
      setImmediate(() => {
        this.#sendScheduled = false;
        this.#sendAll();
      });
    }
  }

  /** Sends what is queued and waits until every op handed over so far (and meanwhile) is
   *  done. */
  async drain(): Promise<void> {
    for (;;) {
      this.#sendAll();
      if (this.#batchesInFlight() === 0) return;
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  /** Why the pool stopped working, when a worker failed (not when it was closed): every file
   *  in flight then failed with this error, and a caller should fail as a whole. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** Stops the workers (after drain(): ops still in flight fail). The files of several parts a
   *  worker still has open (a restore that stopped) are closed as it exits. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new Error('file-write pool closed'));
    await Promise.all(this.#slots.splice(0).map((s) => s?.worker.terminate()));
  }

  /** Batches sent to each worker so far (tests). */
  get batchesPerWorker(): readonly number[] {
    return this.#slots.map((s) => s?.sent ?? 0);
  }

  #batchesInFlight(): number {
    let n = 0;
    for (const s of this.#slots) if (s) n += s.batches.size;
    return n;
  }

  #sendAll(): void {
    for (const s of this.#slots) if (s) this.#send(s);
  }

  #send(slot: Slot): void {
    const batch = slot.open;
    if (!batch || batch.done.length === 0) return;
    slot.open = undefined;
    if (this.#failure) {
      for (const d of batch.done) d(this.#failure, false);
      return;
    }
    const seq = ++this.#seq;
    slot.sent++;
    slot.batches.set(seq, { bytes: batch.used, at: batch.at, done: batch.done });
    this.#inFlight += batch.used;
    const paths = batch.paths.buffer.slice(batch.paths.byteOffset, batch.paths.byteOffset + batch.pathsUsed) as ArrayBuffer;
    const blobIds = Uint8Array.from(batch.blobIds.subarray(0, (batch.blobs.length / BLOB_FIELDS) * BLOB_ID_BYTES));
    // (both copied: the next batch fills them again, as grown by this one)
    slot.paths = batch.paths;
    slot.blobIds = batch.blobIds;
    // a slab run shrinks to what the batch holds
    this.#buffers.shrink(batch, batch.used);
    const own = batch.at < 0 ? (batch.buf.buffer as ArrayBuffer) : undefined;
    const msg: ToFileWriter = {
      seq,
      at: batch.at,
      ...(own ? { buf: own } : {}),
      blobs: Float64Array.from(batch.blobs),
      blobIds,
      packIds: batch.packIds,
      paths,
      pathLengths: Uint32Array.from(batch.pathLengths),
      meta: Float64Array.from(batch.meta),
      owners: this.#owners,
    };
    slot.worker.postMessage(msg, own ? [own, paths] : [paths]);
  }

  /** The worker with the fewest batches in flight (then the fewest bytes), started on first
   *  need. */
  #idlest(): Slot {
    let best = -1;
    let bestLoad = Infinity;
    for (let i = 0; i < this.#size; i++) {
      const slot = this.#slots[i];
      if (!slot) {
        best = i;
        break;
      }
      let load = slot.batches.size * MAX_IN_FLIGHT_BYTES;
      for (const b of slot.batches.values()) load += b.bytes;
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    return (this.#slots[best] ??= this.#spawn());
  }

  #spawn(): Slot {
    // the worker's garbage is a few views per batch: a small young generation is plenty (2 MiB
    // of new space; at 4 MiB a 150k-file restore peaked ~8 MiB higher and was no faster)
    // trackUnmanagedFds (Node's default, set for the files of parts left open): a worker's
    // descriptors are closed when it exits
    workerHeapFromLimits();
    const worker = new Worker(this.#script, { workerData: { ...this.#init, slab: this.#buffers.slab } satisfies FileWriterData, name: 'cairn-write', trackUnmanagedFds: true, resourceLimits: { maxYoungGenerationSizeMb: 2 } });
    worker.unref();
    const slot: Slot = { worker, batches: new Map(), open: undefined, paths: Buffer.allocUnsafeSlow(64 * 1024), blobIds: Buffer.allocUnsafeSlow(64 * BLOB_ID_BYTES), sent: 0 };
    worker.on('message', (msg: FromFileWriter) => this.#onDone(slot, msg));
    worker.on('error', (err) => this.#break(new Error(`file-write worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#break(new Error(`file-write worker exited with code ${code}`));
    });
    return slot;
  }

  #onDone(slot: Slot, msg: FromFileWriter): void {
    const b = slot.batches.get(msg.seq);
    if (!b) return;
    slot.batches.delete(msg.seq);
    this.#inFlight -= b.bytes;
    this.#buffers.release(b.at, b.bytes, msg.buf);
    let k = 0;
    let c = 0;
    for (let i = 0; i < b.done.length; i++) {
      const f = msg.failed[k];
      if (f?.i === i) {
        k++;
        b.done[i]!(Object.assign(new Error(f.message), f.code !== undefined ? { code: f.code } : {}), f.created);
        continue;
      }
      const created = msg.created[c] === i;
      if (created) c++;
      b.done[i]!(undefined, created);
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
      if (!slot) continue;
      for (const b of slot.batches.values()) for (const d of b.done) d(this.#failure, false);
      slot.batches.clear();
      const open = slot.open;
      slot.open = undefined;
      if (open) for (const d of open.done) d(this.#failure, false);
    }
    this.#inFlight = 0;
    this.#wake();
  }
}

/** True when `batch` has no room for one more op of `content` (`bytes` long; nothing more when
 *  it is the content last added, whose bytes the op shares). */
function full(batch: Batch, content: Content | undefined, bytes: number): boolean {
  const added = content !== undefined && batch.lastContent === content ? 0 : bytes;
  return batch.used + added > batch.buf.length || batch.done.length >= BATCH_FILES;
}

/** Adds a content's bytes (and, for a sealed blob, its id, salt and pack) to a batch; returns
 *  its number in the batch. */
function addContent(batch: Batch, content: Content): number {
  const n = batch.blobs.length / BLOB_FIELDS;
  const plain = content instanceof Uint8Array;
  const bytes = plain ? content : content.sealed;
  copyInto(batch.buf, batch.used, bytes);
  // (in the order of BLOB_AT … BLOB_SEALED)
  batch.blobs.push(batch.used, bytes.length, plain ? bytes.length : content.rawLength, plain ? 0 : content.type, plain ? 0 : 1);
  batch.used += bytes.length;
  if ((n + 1) * BLOB_ID_BYTES > batch.blobIds.length) {
    const bigger = Buffer.allocUnsafe(2 * batch.blobIds.length);
    batch.blobIds.copy(bigger);
    batch.blobIds = bigger;
  }
  if (!plain) {
    batch.blobIds.set(content.id, n * BLOB_ID_BYTES);
    batch.blobIds.set(content.salt, n * BLOB_ID_BYTES + ID_BYTES);
  }
  batch.packIds.push(plain ? '' : content.packId);
  batch.lastContent = content;
  batch.lastBlob = n;
  return n;
}
