import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CairnError, type ErrorCode } from '../core/errors.js';
import type { ProgressSink } from '../engine/progress.js';
import type { BackupOutcome, CheckOutcome, EngineOps, OpContext, RestoreOutcome } from '../jobs/engine-ops.js';
import type { FromWorker, WireError, WorkerInit } from './worker-protocol.js';

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly progress: ProgressSink;
  readonly done: () => void;
}

/**
 * EngineOps run in the engine worker (engine-worker.ts), one thread for the agent's life. A
 * cancel is sent to the worker, which stops the operation at its next safe point. Should the
 * worker die, the operation in flight fails (E_INTERNAL) and the next one starts a new worker.
 */
export class WorkerEngine implements EngineOps {
  readonly #init: WorkerInit;
  readonly #log: Logger;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | undefined;
  #nextId = 1;

  constructor(init: WorkerInit, log: Logger) {
    this.#init = init;
    this.#log = log;
  }

  backup(spec: Parameters<EngineOps['backup']>[0], ctx: OpContext): Promise<BackupOutcome> {
    return this.#run('backup', spec, ctx) as Promise<BackupOutcome>;
  }

  restore(spec: Parameters<EngineOps['restore']>[0], ctx: OpContext): Promise<RestoreOutcome> {
    return this.#run('restore', spec, ctx) as Promise<RestoreOutcome>;
  }

  check(spec: Parameters<EngineOps['check']>[0], ctx: OpContext): Promise<CheckOutcome> {
    return this.#run('check', spec, ctx) as Promise<CheckOutcome>;
  }

  /** Stops the worker (after the agent's jobs have stopped). */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    await w?.terminate();
  }

  #run(op: 'backup' | 'restore' | 'check', spec: unknown, ctx: OpContext): Promise<unknown> {
    ctx.signal.throwIfAborted();
    const worker = this.#ensureWorker();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => worker.postMessage({ type: 'cancel', id, reason: ctx.signal.reason instanceof Error ? ctx.signal.reason.message : 'cancelled' });
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, { resolve, reject, progress: ctx.progress, done: () => ctx.signal.removeEventListener('abort', onAbort) });
      worker.postMessage({ type: 'run', id, op, spec });
    });
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./engine-worker.js', import.meta.url), { workerData: this.#init, name: 'cairn-engine' });
    w.on('message', (m: FromWorker) => this.#onMessage(m));
    w.on('error', (err) => {
      this.#log.error({ err }, 'engine worker failed');
      this.#failAll(err);
    });
    w.on('exit', (code) => {
      if (this.#worker === w) this.#worker = undefined;
      this.#failAll(new CairnError('E_INTERNAL', `the engine worker exited (code ${code})`, { hint: 'see the agent log; the next job starts a new worker' }));
    });
    this.#worker = w;
    return w;
  }

  #onMessage(m: FromWorker): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case 'progress':
        p.progress.add(m.files, m.bytes);
        return;
      case 'total':
        p.progress.setTotal(m.files, m.bytes);
        return;
      case 'skipped':
        p.progress.error(m.path, new Error(m.message));
        return;
      case 'done':
        this.#settle(m.id);
        p.resolve(m.result);
        return;
      case 'failed':
        this.#settle(m.id);
        p.reject(rebuild(m.error));
    }
  }

  #settle(id: number): void {
    this.#pending.get(id)?.done();
    this.#pending.delete(id);
  }

  #failAll(err: Error): void {
    for (const [id, p] of [...this.#pending]) {
      this.#settle(id);
      p.reject(err);
    }
  }
}

/** The CairnError a worker's error stands for (an abort becomes E_CANCELLED). */
function rebuild(e: WireError): Error {
  if (e.code !== undefined) return new CairnError(e.code as ErrorCode, e.message, { ...(e.hint !== undefined ? { hint: e.hint } : {}), retryable: e.retryable });
  if (e.name === 'AbortError') return new CairnError('E_CANCELLED', e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
