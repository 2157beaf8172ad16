// A file-write worker (see file-write-pool.ts): creates, writes and finishes the whole files of
// each batch it is sent with synchronous calls, and answers once per batch.
import { closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, openSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { FIELDS, type FileWriteFailure, type FromFileWriter, type ToFileWriter } from './file-write-pool.js';

const port = parentPort;
if (!port) throw new Error('file-write-worker.js runs as a worker thread');

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Writes one file; throws with `created` set once the file exists. */
function writeFile(path: Buffer, data: Uint8Array, m: Float64Array, at: number, owners: boolean): void {
  const fd = openSync(path, CREATE, 0o600);
  try {
    const offset = m[at + 2]!;
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, offset + done);
    const size = m[at + 3]!;
    if (offset + data.length !== size) ftruncateSync(fd, size);
    if (owners) fchownSync(fd, m[at + 5]!, m[at + 6]!);
    fchmodSync(fd, m[at + 4]!);
    futimesSync(fd, m[at + 7]!, m[at + 7]!);
  } catch (err) {
    closeSync(fd);
    throw Object.assign(err as Error, { created: true });
  }
  closeSync(fd);
}

port.on('message', (msg: ToFileWriter) => {
  const data = new Uint8Array(msg.buf);
  const paths = Buffer.from(msg.paths);
  const m = msg.meta;
  const failed: FileWriteFailure[] = [];
  const n = m.length / FIELDS;
  let pathAt = 0;
  for (let i = 0; i < n; i++) {
    const at = i * FIELDS;
    const pathLen = msg.pathLengths[i]!;
    const path = paths.subarray(pathAt, pathAt + pathLen);
    pathAt += pathLen;
    try {
      writeFile(path, data.subarray(m[at]!, m[at]! + m[at + 1]!), m, at, msg.owners);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { created?: boolean };
      failed.push({ i, message: e.message, ...(e.code !== undefined ? { code: e.code } : {}), created: e.created === true });
    }
  }
  const answer: FromFileWriter = { seq: msg.seq, failed, buf: msg.buf };
  port.postMessage(answer, [msg.buf]);
});
