// A seal worker (see seal-pool.ts): compresses and seals the data blobs of the batches it is sent
// into packs of its own, and posts each pack back when it is full or when asked to flush.
import { parentPort, workerData } from 'node:worker_threads';
import { expectDetachedBuffers } from '../core/bytes.js';
import { CairnError } from '../core/errors.js';
import { compactEntries } from '../core/pack-format.js';
import { claimForWorker } from './batch-claims.js';
import { packBuilder } from './pack-file.js';
import { type FinishedPack, type StagedPack, sealBatch } from './pack-writer.js';
import { bufferedRandom } from './random.js';
import type { FromSealWorker, SealWorkerData, ToSealWorker } from './seal-pool.js';
import { minorGcEvery } from './worker-gc.js';

const port = parentPort;
if (!port) throw new Error('seal-worker.js runs as a worker thread');
// packs and batch buffers are transferred back: detached here
expectDetachedBuffers();
const init = workerData as SealWorkerData;
/** The pool's slab, where batches come in (see SharedSlab). */
const slab = new Uint8Array(init.slab);
/** Which batches in the slab this worker may seal (see ClaimSlots). */
const claims = new Int32Array(init.claims);

/** A minor GC after every 4 MiB sealed: every blob's ciphertext is a new buffer (see
 *  minorGcEvery), and what died between GCs stayed in this thread's malloc arena. ~700
 *  scavenges on a 2.9 GB backup; at 16 MiB its peak RSS was 10-15 MiB higher (§34). */
const sealedBytes = minorGcEvery(4 * 1024 * 1024);

function post(msg: FromSealWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/** Packs go to files in the store's staging folder when it has one (then no pack is ever held
 *  in memory), else to buffers (a store without one keeps its objects in memory anyway). */
const builder = packBuilder(init.dataKey, bufferedRandom(), init.packTargetBytes, init.stagingDir);

function postPack(pack: FinishedPack | StagedPack | undefined): void {
  if (!pack) return;
  const { ids, meta } = compactEntries(pack.entries);
  if ('file' in pack) {
    post({ t: 'staged', packId: pack.packId, salt: pack.salt, ids, meta, file: pack.file, sizeBytes: pack.sizeBytes }, [ids.buffer, meta.buffer]);
    return;
  }
  // the pack is the start of a buffer of its own (allocUnsafeSlow, never a pooled slice):
  // transfer the whole buffer (a copy only if the pack ever stops starting its buffer)
  const whole = pack.bytes.byteOffset === 0;
  const bytes = whole ? (pack.bytes.buffer as ArrayBuffer) : Uint8Array.from(pack.bytes).buffer;
  post({ t: 'pack', packId: pack.packId, salt: pack.salt, ids, meta, bytes, length: pack.bytes.length }, [bytes, ids.buffer, meta.buffer]);
}

port.on('message', (msg: ToSealWorker) => {
  if (msg.t === 'flush') {
    try {
      postPack(builder.finish());
      post({ t: 'flushed', seq: msg.seq });
    } catch (err) {
      fail(msg.seq, 'finish a pack', err);
    }
    return;
  }
  if (msg.t === 'discard') {
    builder.discard();
    post({ t: 'discarded', seq: msg.seq });
    return;
  }
  // a batch the main thread has sealed meanwhile (assist): dropped, it has its answer
  if (!claimForWorker(claims, msg.claim, msg.seq)) return;
  try {
    let bytes = 0;
    for (const n of msg.lengths) bytes += n;
    const data = msg.buf ? new Uint8Array(msg.buf) : slab.subarray(msg.at, msg.at + bytes);
    const sealed = sealBatch(builder, init.compression, new Uint8Array(msg.ids), msg.lengths, data, postPack);
    // a batch buffer of its own goes back for the next batch; a slab run is given back by the
    // pool when this answer comes
    if (msg.buf) post({ t: 'sealed', seq: msg.seq, sealed, buf: msg.buf }, [msg.buf]);
    else post({ t: 'sealed', seq: msg.seq, sealed });
    sealedBytes(bytes);
  } catch (err) {
    fail(msg.seq, `compress and seal a batch of ${msg.lengths.length} blobs`, err);
  }
});

/** Reports a failure, keeping a CairnError's code and hint (a full disk says what to do), and
 *  drops the pack being built: the pool fails as a whole, so its blobs are lost anyway. */
function fail(seq: number, what: string, err: unknown): void {
  builder.discard();
  const e = err as Partial<CairnError>;
  post({ t: 'failed', seq, message: `${what}: ${(err as Error).message}`, ...(err instanceof CairnError ? { code: err.code, hint: e.hint } : {}) });
}
