// A file-write worker (see file-write-pool.ts): opens (decrypts, decompresses, verifies) the
// blobs of each batch it is sent, creates, writes and finishes their files with synchronous
// calls, and answers once per batch. Files of several parts stay open here between parts.
import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { expectDetachedBuffers } from '../core/bytes.js';
import { IdHasher } from '../core/hash.js';
import { ID_BYTES, type PackId } from '../core/ids.js';
import type { BlobTypeId } from '../core/pack-format.js';
import { openBlobSync, PackKeys } from '../repo/blob-reader.js';
import { minorGcEvery } from '../repo/worker-gc.js';
import { createMode, type FinalMeta, finishFile, writeAllAt } from './file-finish.js';
import {
  BLOB,
  BLOB_AT,
  BLOB_FIELDS,
  BLOB_LENGTH,
  BLOB_RAW,
  BLOB_SEALED,
  BLOB_TYPE,
  BLOB_ID_BYTES,
  FIELDS,
  KEY,
  META,
  OFFSET,
  OP,
  Op,
  type FileWriteFailure,
  type FileWriterData,
  type FromFileWriter,
  type ToFileWriter,
} from './file-write-pool.js';

const port = parentPort;
if (!port) throw new Error('file-write-worker.js runs as a worker thread');
// batch buffers of their own are transferred back: detached here
expectDetachedBuffers();
const init = workerData as FileWriterData;
/** The pool's slab, where batches come in (see SharedSlab). */
const slab = new Uint8Array(init.slab);
/** This process's umask (read, not set: a worker may not set it). */
const UMASK = process.umask();
const keys = init.dataKey ? new PackKeys(init.dataKey) : undefined;
const hasher = init.idKey ? new IdHasher(init.idKey) : undefined;
/** Where blobs below 2 MiB are decompressed (most: chunks average 1 MiB, and compress); a
 *  larger one gets a buffer of its own. */
const DECODE_BUFFER_BYTES = 2 * 1024 * 1024;
const decodeBuf = Buffer.allocUnsafeSlow(DECODE_BUFFER_BYTES);
/** A minor GC after every 1 MiB of new buffers: each blob's decrypted bytes are one (see
 *  minorGcEvery), as is the decompressed form of a blob too large for decodeBuf. Every 4 MiB,
 *  a 150k-file restore peaked 8-12 MiB higher (three alternating runs: 211-218 against
 *  204-206 MiB), at the same speed; every 0.5 MiB was no lower. */
const allocated = minorGcEvery(1024 * 1024);

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const REOPEN = constants.O_WRONLY | constants.O_NOFOLLOW;
/** Files of several parts kept open at once; the longest unused is closed past this. */
const MAX_OPEN = 128;

/** Open files of several parts by key, least recently used first. */
const open = new Map<number, number>();
/** Keys of the files of several parts this worker created and has not finished. */
const created = new Set<number>();
/** Keys of the files of several parts that failed or were given up: later parts are skipped. */
const dropped = new Set<number>();

/** An error that says the file exists (its creator failed after creating it). */
function withCreated(err: unknown): Error {
  return Object.assign(err as Error, { created: true });
}

/** Writes one whole file; throws with `created` set once the file exists. */
function writeWhole(path: Buffer, data: Uint8Array, m: Float64Array, at: number, owners: boolean): void {
  const meta = finalMeta(m, at);
  const mode = createMode(meta.mode, UMASK);
  const fd = openSync(path, CREATE, mode.create);
  try {
    const offset = m[at + OFFSET]!;
    writeAllAt(fd, data, offset);
    finishFile(fd, meta, owners, offset + data.length !== meta.size, mode.final);
  } catch (err) {
    closeSync(fd);
    throw withCreated(err);
  }
  closeSync(fd);
}

function finalMeta(m: Float64Array, at: number): FinalMeta {
  const f = at + META;
  return { size: m[f]!, mode: m[f + 1]!, uid: m[f + 2]!, gid: m[f + 3]!, mtime: m[f + 4]! };
}

/** Writes a part of a file of several parts, or finishes one (Op.finish); true when this op
 *  created the file. An op that fails closes and removes the file (if this worker created
 *  it), and drops its key. A part of the file's own worker (Op.part, Op.last) creates it if
 *  this worker has not, and keeps it open; a spread part (Op.spread) and a finish find it made
 *  (by another worker, or this one): a spread part leaves it open only if this worker held it
 *  open, and a finish closes it. */
function writePart(path: Buffer, data: Uint8Array, m: Float64Array, at: number, owners: boolean): boolean {
  const key = m[at + KEY]!;
  const op = m[at + OP];
  if (dropped.has(key)) throw new Error(`${path.toString()}: not written, an earlier part of it failed`);
  let made = false;
  try {
    let fd = open.get(key);
    if (fd === undefined && (op === Op.spread || op === Op.finish)) {
      fd = openSync(path, REOPEN);
      try {
        if (op === Op.spread) writeAllAt(fd, data, m[at + OFFSET]!);
        else finishFile(fd, finalMeta(m, at), owners);
      } finally {
        closeSync(fd);
      }
      if (op === Op.finish) created.delete(key);
      return false;
    }
    if (fd === undefined) {
      if (open.size >= MAX_OPEN) closeKey(open.keys().next().value!);
      made = !created.has(key);
      fd = openSync(path, made ? CREATE : REOPEN, 0o600);
      if (made) created.add(key);
    } else open.delete(key); // (re-added below: the map's order is the order of use)
    open.set(key, fd);
    if (op !== Op.finish) writeAllAt(fd, data, m[at + OFFSET]!);
    if (op === Op.last || op === Op.finish) {
      finishFile(fd, finalMeta(m, at), owners);
      closeKey(key);
      created.delete(key);
    }
    return made;
  } catch (err) {
    drop(key, path);
    throw err;
  }
}

function closeKey(key: number): void {
  const fd = open.get(key);
  if (fd === undefined) return;
  open.delete(key);
  closeSync(fd);
}

/** Closes a file of several parts, removes it if this worker created it, and skips its later
 *  parts. */
function drop(key: number, path: Buffer): void {
  dropped.add(key);
  try {
    closeKey(key);
  } catch {
    // the file goes anyway
  }
  if (!created.delete(key)) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone: nothing is left to look restored
  }
}

/** The content of blob `b` of a batch: opened and verified when sealed (throws if it does not
 *  open or verify), else its bytes. May be a view of decodeBuf, valid until the next call. */
function content(msg: ToFileWriter, bytes: Uint8Array, b: number): Uint8Array {
  const at = b * BLOB_FIELDS;
  const off = msg.blobs[at + BLOB_AT]!;
  const data = bytes.subarray(off, off + msg.blobs[at + BLOB_LENGTH]!);
  if (msg.blobs[at + BLOB_SEALED] !== 1) return data;
  if (!keys || !hasher) throw new Error('file-write worker was started without the keys to open blobs');
  const rawLength = msg.blobs[at + BLOB_RAW]!;
  const into = rawLength < DECODE_BUFFER_BYTES ? decodeBuf : undefined;
  const ids = msg.blobIds.subarray(b * BLOB_ID_BYTES, (b + 1) * BLOB_ID_BYTES);
  const loc = { type: msg.blobs[at + BLOB_TYPE]! as BlobTypeId, packId: msg.packIds[b]! as PackId, salt: ids.subarray(ID_BYTES), rawLength };
  allocated(data.length + (into ? 0 : rawLength));
  // decrypted where it lies: the batch's bytes are this worker's until it answers
  return openBlobSync(keys, hasher, ids.subarray(0, ID_BYTES), loc, data, into, true);
}

const NONE = new Uint8Array(0);

// (files still open when the restore stops are closed as this thread exits: trackUnmanagedFds)
port.on('message', (msg: ToFileWriter) => {
  const bytes = msg.buf ? new Uint8Array(msg.buf) : slab.subarray(msg.at);
  const paths = Buffer.from(msg.paths);
  const m = msg.meta;
  const failed: FileWriteFailure[] = [];
  const made: number[] = [];
  const n = m.length / FIELDS;
  let pathAt = 0;
  // the blob last opened: the ops of one blob come one after another (ops without content may
  // come between them). A blob is opened once: it is decrypted where it lies.
  let opened = -1;
  let openedData: Uint8Array = NONE;
  let openError: unknown;
  for (let i = 0; i < n; i++) {
    const at = i * FIELDS;
    const pathLen = msg.pathLengths[i]!;
    const path = paths.subarray(pathAt, pathAt + pathLen);
    pathAt += pathLen;
    const op = m[at + OP];
    const b = m[at + BLOB]!;
    try {
      if (op === Op.abandon) {
        drop(m[at + KEY]!, path);
        continue;
      }
      if (b >= 0 && b !== opened) {
        opened = b;
        openError = undefined;
        try {
          openedData = content(msg, bytes, b);
        } catch (err) {
          openError = err;
        }
      }
      if (b >= 0 && openError !== undefined) {
        if (op !== Op.whole) drop(m[at + KEY]!, path);
        throw openError;
      }
      const data = b < 0 ? NONE : openedData;
      if (op === Op.whole) {
        writeWhole(path, data, m, at, msg.owners);
        made.push(i);
      } else if (writePart(path, data, m, at, msg.owners)) made.push(i);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { created?: boolean };
      failed.push({ i, message: e.message, ...(e.code !== undefined ? { code: e.code } : {}), created: e.created === true });
    }
  }
  // a batch buffer of its own goes back for the next batch; a slab run is given back by the
  // pool when this answer comes
  const answer: FromFileWriter = { seq: msg.seq, failed, created: made, ...(msg.buf ? { buf: msg.buf } : {}) };
  port.postMessage(answer, msg.buf ? [msg.buf] : []);
});
