// A file-write worker (see file-write-pool.ts): creates, writes and finishes the whole files of
// each batch it is sent with synchronous calls, and answers once per batch.
import { closeSync, constants, openSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { finishFile, writeAllAt } from './file-finish.js';
import { FIELDS, type FileWriteFailure, type FromFileWriter, type ToFileWriter } from './file-write-pool.js';

const port = parentPort;
if (!port) throw new Error('file-write-worker.js runs as a worker thread');

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Writes one file; throws with `created` set once the file exists. */
function writeFile(path: Buffer, data: Uint8Array, m: Float64Array, at: number, owners: boolean): void {
  const fd = openSync(path, CREATE, 0o600);
  try {
    const offset = m[at + 2]!;
    writeAllAt(fd, data, offset);
    const size = m[at + 3]!;
    finishFile(fd, { size, mode: m[at + 4]!, uid: m[at + 5]!, gid: m[at + 6]!, mtime: m[at + 7]! }, owners, offset + data.length !== size);
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
