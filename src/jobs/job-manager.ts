import type { Logger } from 'pino';
import { CairnError, isAbortError } from '../core/errors.js';
import type { Clock, TimerHandle } from './clock.js';
import { FINAL_STATES, type Job, type JobError, type JobKind, type JobParams, type JobPatch, type JobTrigger } from './job.js';
import type { JobFilter, JobPage, JobStore } from './job-store.js';
import { ProgressTracker } from './progress.js';

/** What a runner hands back: the job's result, and an error when the job did its work but
 *  failed (a check that found damage). A runner that throws fails the job with that error. */
export interface JobOutcome {
  readonly result: Readonly<Record<string, unknown>>;
  readonly error?: JobError;
}

/** What a runner is given. */
export interface RunContext {
  /** Aborts when the job is cancelled or the agent stops: stop at the next safe point. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly progress: ProgressTracker;
}

/** Does one kind of job. */
export type JobRunner = (job: Job, ctx: RunContext) => Promise<JobOutcome>;

/** Options of a JobManager. */
export interface JobManagerOptions {
  readonly store: JobStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly runners: Readonly<Record<JobKind, JobRunner>>;
  /** Checks a job's parameters before it is queued (throws a CairnError naming the field);
   *  returns the source it concerns, if any. */
  readonly admit: (kind: JobKind, params: JobParams) => { source?: string };
  /** Called after every job reaches a final state (metrics, logs). */
  readonly onFinished?: (job: Job) => void;
  /** How often a running job's progress is written to the store. */
  readonly progressEveryMs?: number;
}

/** The running job and what controls it. */
interface Active {
  readonly job: Job;
  readonly controller: AbortController;
  readonly tracker: ProgressTracker;
  done: Promise<void>;
  timer?: TimerHandle;
}

/** A submitted job, and whether it was already queued (an equal backup waiting its turn). */
export interface Submitted {
  readonly job: Job;
  readonly existing: boolean;
}

/**
 * One queue of jobs, run one at a time: every job may write the repository (a backup) or hold
 * it still (a check), and one writer per repository is the rule. State moves queued → running →
 * succeeded | failed | cancelled; everything is written to the store as it happens, and a
 * running job's progress about once a second. A backup asked for while an equal one is queued
 * returns the queued one (the schedule and a POST do not stack up runs).
 */
export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #queue: string[] = [];
  #running: Active | undefined;
  #stopping = false;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(opts: JobManagerOptions) {
    this.#o = opts;
  }

  /** Queues a job (validated by `admit`); it starts when the jobs before it are done. */
  submit(kind: JobKind, params: JobParams, trigger: JobTrigger): Submitted {
    if (this.#stopping) throw new CairnError('E_STATE', 'the agent is stopping and takes no new jobs', { retryable: true, hint: 'submit it again once the agent is back' });
    const { source } = this.#o.admit(kind, params);
    if (kind === 'backup') {
      const waiting = this.#queue.map((id) => this.#o.store.get(id)).find((j) => j?.kind === 'backup' && j.source === source);
      if (waiting) return { job: waiting, existing: true };
    }
    const job = this.#o.store.insert({ kind, params, trigger, createdAt: new Date(this.#o.clock.now()).toISOString(), ...(source !== undefined ? { source } : {}) });
    this.#o.logger.info({ jobId: job.id, kind, source, trigger }, 'job queued');
    this.#queue.push(job.id);
    this.#pump();
    return { job, existing: false };
  }

  /** Cancels a queued job at once, or a running one at its next safe point; a finished job
   *  cannot be cancelled (E_JOB_FINISHED). */
  cancel(id: string): Job {
    const job = this.get(id);
    if (!job) throw new CairnError('E_JOB_NOT_FOUND', `no job ${id}`, { hint: 'list jobs with GET /v1/jobs' });
    if (FINAL_STATES.has(job.state)) throw new CairnError('E_JOB_FINISHED', `job ${id} has already ${job.state}`);
    if (this.#running?.job.id === id) {
      this.#o.logger.info({ jobId: id }, 'job cancel requested');
      this.#running.controller.abort(new CairnError('E_CANCELLED', 'cancelled on request'));
      return this.get(id)!;
    }
    const at = this.#queue.indexOf(id);
    if (at >= 0) this.#queue.splice(at, 1);
    const done = this.#finish(job, { state: 'cancelled', error: { code: 'E_CANCELLED', message: 'cancelled before it started' } });
    return done;
  }

  /** A job, with live progress when it is running. */
  get(id: string): Job | undefined {
    if (this.#running?.job.id === id) return this.#live();
    return this.#o.store.get(id);
  }

  /** A page of jobs, newest first, the running one with live progress. */
  list(filter: JobFilter, limit: number, cursor?: string): JobPage {
    const page = this.#o.store.list(filter, limit, cursor);
    const r = this.#running;
    if (!r || !page.jobs.some((j) => j.id === r.job.id)) return page;
    return { ...page, jobs: page.jobs.map((j) => (j.id === r.job.id ? this.#live() : j)) };
  }

  /** The running job, if any. */
  running(): Job | undefined {
    return this.#running ? this.#live() : undefined;
  }

  /** Number of jobs waiting. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves when nothing is running or queued. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Takes no more jobs, cancels queued ones, asks the running one to stop at a safe point and
   *  waits for it up to deadlineMs; resolves true when it stopped in time. */
  async stop(reason: string, deadlineMs: number): Promise<boolean> {
    this.#stopping = true;
    for (const id of this.#queue.splice(0)) {
      const j = this.#o.store.get(id);
      if (j) this.#finish(j, { state: 'cancelled', error: { code: 'E_CANCELLED', message: `not started: ${reason}` } });
    }
    const r = this.#running;
    if (!r) return true;
    r.controller.abort(new CairnError('E_CANCELLED', reason));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((res) => (timer = setTimeout(() => res(false), deadlineMs)));
    const inTime = await Promise.race([r.done.then(() => true as const), late]);
    clearTimeout(timer);
    return inTime;
  }

  #live(): Job {
    const r = this.#running!;
    return { ...r.job, progress: r.tracker.snapshot(this.#o.clock.now()) };
  }

  #pump(): void {
    if (this.#running) return;
    const id = this.#stopping ? undefined : this.#queue.shift();
    if (id === undefined) {
      for (const w of this.#idleWaiters.splice(0)) w();
      return;
    }
    let job: Job;
    try {
      job = this.#o.store.update(id, { state: 'running', startedAt: new Date(this.#o.clock.now()).toISOString() });
    } catch (err) {
      this.#o.logger.error({ err, jobId: id }, 'cannot start the job: the job database cannot record it; it is skipped');
      return this.#pump();
    }
    const log = this.#o.logger.child({ jobId: id, kind: job.kind, ...(job.source !== undefined ? { source: job.source } : {}) });
    const controller = new AbortController();
    const tracker = new ProgressTracker((path, err) => log.warn({ path, err }, 'path skipped'));
    const running: Active = { job, controller, tracker, done: Promise.resolve() };
    this.#running = running;
    this.#scheduleProgress();
    log.info({ params: job.params }, 'job started');
    running.done = this.#execute(job, { signal: controller.signal, log, progress: tracker }).finally(() => {
      if (running.timer) this.#o.clock.clearTimeout(running.timer);
      this.#running = undefined;
      this.#pump();
    });
  }

  /** Runs a job to its end and records it. Never rejects: a store that cannot record the end
   *  (a full disk) is logged, and the job shows as interrupted after the next start. */
  async #execute(job: Job, ctx: RunContext): Promise<void> {
    let patch: JobPatch;
    try {
      const out = await this.#o.runners[job.kind](job, ctx);
      ctx.progress.setPhase('done');
      patch = { state: out.error ? 'failed' : 'succeeded', result: out.result, ...(out.error ? { error: out.error } : {}) };
    } catch (err) {
      if (ctx.signal.aborted && (isAbortError(err) || err === ctx.signal.reason || (err instanceof CairnError && err.code === 'E_CANCELLED'))) {
        const why = ctx.signal.reason instanceof Error ? ctx.signal.reason.message : 'cancelled';
        patch = { state: 'cancelled', error: { code: 'E_CANCELLED', message: `${why}; what was uploaded is kept and reused by the next backup` } };
      } else {
        patch = { state: 'failed', error: jobError(err) };
      }
    }
    this.#finish(job, { ...patch, progress: ctx.progress.snapshot(this.#o.clock.now()) });
    const level = patch.state === 'succeeded' ? 'info' : patch.state === 'cancelled' ? 'warn' : 'error';
    ctx.log[level]({ state: patch.state, result: patch.result, error: patch.error }, `job ${patch.state}`);
  }

  /** Records a job's end and tells onFinished; returns the job as it ended, also when the store
   *  failed to record it (then logged). */
  #finish(job: Job, patch: Omit<JobPatch, 'finishedAt'>): Job {
    const finishedAt = new Date(this.#o.clock.now()).toISOString();
    let done: Job;
    try {
      done = this.#o.store.update(job.id, { ...patch, finishedAt });
    } catch (err) {
      this.#o.logger.error({ err, jobId: job.id, state: patch.state }, 'cannot record the end of the job in the job database; it will show as interrupted after a restart');
      done = { ...job, ...patch, finishedAt };
    }
    try {
      this.#o.onFinished?.(done);
    } catch (err) {
      this.#o.logger.warn({ err, jobId: job.id }, 'job end listener failed');
    }
    return done;
  }

  #scheduleProgress(): void {
    const r = this.#running;
    if (!r) return;
    r.timer = this.#o.clock.setTimeout(() => {
      if (this.#running !== r) return;
      try {
        this.#o.store.update(r.job.id, { progress: r.tracker.snapshot(this.#o.clock.now()) });
      } catch (err) {
        this.#o.logger.warn({ err, jobId: r.job.id }, 'cannot record job progress');
      }
      this.#scheduleProgress();
    }, this.#o.progressEveryMs ?? 1000);
  }
}

/** A job error from anything thrown: the CairnError's code and hint, or E_INTERNAL. */
export function jobError(err: unknown): JobError {
  if (err instanceof CairnError) return { code: err.code, message: err.message, ...(err.hint !== undefined ? { hint: err.hint } : {}) };
  return { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err), hint: 'this is a bug in cairn: please report it with the agent log' };
}
