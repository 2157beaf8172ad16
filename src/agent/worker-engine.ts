import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CairnError, type ErrorCode } from '../core/errors.js';
import type { ProgressSink } from '../engine/progress.js';
import type { BackupOutcome, CheckOutcome, EngineOps, OpContext, RestoreOutcome } from '../jobs/engine-ops.js';
import { workerHeapFromLimits } from '../repo/worker-script.js';
import type { FromWorker, WireError, WorkerInit } from './worker-protocol.js';

/** The engine worker's young generation, in MiB: V8 makes it 3 semi-spaces, so 2 MiB each. */
const ENGINE_YOUNG_GENERATION_MB = 6;

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

  readonly #onCrash: () => void;

  /** `onCrash` runs when the worker dies unasked: the locks it held name this live process and
   *  would otherwise block exclusive operations until they go stale. */
  constructor(init: WorkerInit, log: Logger, onCrash: () => void = () => undefined) {
    this.#init = init;
    this.#log = log;
    this.#onCrash = onCrash;
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
    if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason as Error);
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
    // 2 MiB semi-spaces (a young generation of 3x that), as the CLI's shebang sets for backups
    // run from a terminal: V8's default grows them to 16 MiB for little gain (decisions §30, §33)
    workerHeapFromLimits();
    const w = new Worker(new URL('./engine-worker.js', import.meta.url), { workerData: this.#init, name: 'cairn-engine', resourceLimits: { maxYoungGenerationSizeMb: ENGINE_YOUNG_GENERATION_MB } });
    w.on('message', (m: FromWorker) => this.#onMessage(m));
    w.on('error', (err) => {
      this.#log.error({ err }, 'engine worker failed');
      // forget it now: the next job, started as this one fails, must get a new worker
      if (this.#worker === w) this.#worker = undefined;
      this.#failAll(err);
      this.#onCrash();
    });
    w.on('exit', (code) => {
      const crashed = this.#worker === w;
      if (crashed) this.#worker = undefined;
      this.#failAll(new CairnError('E_INTERNAL', `the engine worker exited (code ${code})`, { hint: 'see the agent log; the next job starts a new worker' }));
      if (crashed) this.#onCrash();
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
        if (!m.error.cairn) this.#log.error({ err: { name: m.error.name, message: m.error.message, stack: m.error.stack } }, 'engine operation failed unexpectedly');
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

/** The error a worker's error stands for: a CairnError with its code when it was one (a cancel
 *  is E_CANCELLED), else a plain Error with the worker's stack (the job says E_INTERNAL). */
function rebuild(e: WireError): Error {
  if (e.name === 'AbortError') return new CairnError('E_CANCELLED', e.message);
  if (e.cairn && e.code !== undefined) return new CairnError(e.code as ErrorCode, e.message, { ...(e.hint !== undefined ? { hint: e.hint } : {}), retryable: e.retryable });
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}
