// A seal worker (see seal-pool.ts): compresses and seals the data blobs of the batches it is sent
// into packs of its own, and posts each pack back when it is full or when asked to flush.
import { parentPort, workerData } from 'node:worker_threads';
import { encodeSync } from '../core/codec.js';
import { ID_BYTES } from '../core/ids.js';
import { BlobType } from '../core/pack-format.js';
import { PackBuilder, type FinishedPack } from './pack-writer.js';
import { bufferedRandom } from './random.js';
import type { FromSealWorker, SealWorkerInit, ToSealWorker } from './seal-pool.js';

const port = parentPort;
if (!port) throw new Error('seal-worker.js runs as a worker thread');
const init = workerData as SealWorkerInit;
const builder = new PackBuilder(init.dataKey, bufferedRandom(), init.packTargetBytes);

function post(msg: FromSealWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

function postPack(pack: FinishedPack | undefined): void {
  if (!pack) return;
  const n = pack.entries.length;
  const ids = new Uint8Array(n * ID_BYTES);
  const meta = new Uint32Array(n * 4);
  pack.entries.forEach((e, i) => {
    ids.set(e.id, i * ID_BYTES);
    meta.set([e.type, e.offset, e.length, e.rawLength], i * 4);
  });
  // Buffer.concat gives a pack its own ArrayBuffer (it is far above the pool size): send it
  // without a copy; copy only if that ever stops being so
  const whole = pack.bytes.byteOffset === 0 && pack.bytes.byteLength === pack.bytes.buffer.byteLength;
  const buffer = pack.bytes.buffer as ArrayBuffer;
  const bytes = whole ? buffer : buffer.slice(pack.bytes.byteOffset, pack.bytes.byteOffset + pack.bytes.byteLength);
  post({ t: 'pack', packId: pack.packId, salt: pack.salt, ids, meta, bytes }, [bytes, ids.buffer, meta.buffer]);
}

port.on('message', (msg: ToSealWorker) => {
  if (msg.t === 'flush') {
    postPack(builder.finish());
    post({ t: 'flushed', seq: msg.seq });
    return;
  }
  try {
    const sealed = new Uint32Array(msg.lengths.length);
    const ids = new Uint8Array(msg.ids);
    let off = 0;
    for (let i = 0; i < msg.lengths.length; i++) {
      const n = msg.lengths[i]!;
      const data = new Uint8Array(msg.buf, off, n);
      off += n;
      // the compressed bytes may sit in this thread's scratch buffer: addEncoded seals them at once
      const enc = encodeSync(data, init.compression, true);
      sealed[i] = builder.addEncoded(BlobType.data, ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES), enc.codec, enc.bytes, n);
      if (builder.full) postPack(builder.finish());
    }
    post({ t: 'sealed', seq: msg.seq, sealed });
  } catch (err) {
    post({ t: 'failed', seq: msg.seq, message: `compress and seal a batch of ${msg.lengths.length} blobs: ${(err as Error).message}` });
  }
});
