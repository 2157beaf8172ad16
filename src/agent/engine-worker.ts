/**
 * The engine worker: a thread that runs the agent's engine operations (backup, restore, check)
 * on its own Repository, so the agent's main thread (the API, the scheduler, the job database)
 * never waits behind a backup's work, and a console's polling does not slow the backup. Started
 * by WorkerEngine with the repository's location and credential; speaks the messages below.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLocalStore } from '../backend/local-store.js';
import { CairnError, isAbortError } from '../core/errors.js';
import type { Credential } from '../core/keys.js';
import { type EngineOps, createLocalEngineOps } from '../jobs/engine-ops.js';
import { openRepository } from '../repo/repository.js';
import { hostEnv } from './host-env.js';
import type { FromWorker, ToWorker, WireError, WorkerInit } from './worker-protocol.js';

/** How often a running operation's progress is sent to the main thread. */
const PROGRESS_EVERY_MS = 200;

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);
const running = new Map<number, AbortController>();
let ops: Promise<EngineOps> | undefined;

/** The engine on this thread's own Repository, opened at the first job; a failed open (the
 *  repository unreachable for a moment) is tried again by the next job. */
function engine(): Promise<EngineOps> {
  if (ops) return ops;
  const opening = openRepository(createLocalStore(init.repoPath), init.credential as Credential, hostEnv()).then((repo) => createLocalEngineOps(repo, init));
  ops = opening;
  opening.catch(() => {
    if (ops === opening) ops = undefined;
  });
  return opening;
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'cancel') running.get(m.id)?.abort(new CairnError('E_CANCELLED', m.reason));
  else void run(m);
});

async function run(m: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const ac = new AbortController();
  running.set(m.id, ac);
  let files = 0;
  let bytes = 0;
  const flush = (): void => {
    if (files === 0 && bytes === 0) return;
    post({ type: 'progress', id: m.id, files, bytes });
    files = bytes = 0;
  };
  const timer = setInterval(flush, PROGRESS_EVERY_MS);
  const progress = {
    add(f: number, b: number) {
      files += f;
      bytes += b;
    },
    setTotal: (f: number, b: number) => post({ type: 'total', id: m.id, files: f, bytes: b }),
    error: (path: string, err: unknown) => post({ type: 'skipped', id: m.id, path, message: err instanceof Error ? err.message : String(err) }),
  };
  try {
    // the first job opens the repository: a cancel must not wait for a slow store
    const e = await Promise.race([engine(), new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true }))]);
    const ctx = { signal: ac.signal, progress };
    const result = m.op === 'backup' ? await e.backup(m.spec as never, ctx) : m.op === 'restore' ? await e.restore(m.spec as never, ctx) : await e.check(m.spec as never, ctx);
    flush();
    post({ type: 'done', id: m.id, result });
  } catch (err) {
    flush();
    post({ type: 'failed', id: m.id, error: toWire(err, ac.signal.aborted) });
  } finally {
    clearInterval(timer);
    running.delete(m.id);
  }
}

/** An error as it crosses to the main thread: a cancel is E_CANCELLED whatever threw it; only a
 *  CairnError keeps its code; anything else keeps its stack for the agent log. */
function toWire(err: unknown, aborted: boolean): WireError {
  const e = err as { name?: string; message?: string; stack?: string };
  const message = e?.message ?? String(err);
  if (aborted && (isAbortError(err) || (err instanceof CairnError && err.code === 'E_CANCELLED'))) return { name: 'AbortError', message, code: 'E_CANCELLED', retryable: false, cairn: true };
  if (err instanceof CairnError) return { name: err.name, message, code: err.code, ...(err.hint !== undefined ? { hint: err.hint } : {}), retryable: err.retryable, cairn: true };
  return { name: e?.name ?? 'Error', message, retryable: false, cairn: false, ...(e?.stack ? { stack: e.stack } : {}) };
}
