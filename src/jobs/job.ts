/** What a job does. Prune and forget join with the retention work. */
export type JobKind = 'backup' | 'restore' | 'check';
/** Every job kind, for schemas and metrics. */
export const JOB_KINDS: readonly JobKind[] = ['backup', 'restore', 'check'];

/** A job's state: queued → running → one of the final states. `interrupted` is a job the agent
 *  was running (or had queued) when it crashed or was killed; it is set at the next start. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
/** Every state, for schemas and metrics. */
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'];
/** States a job never leaves. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** Why a job was created. */
export type JobTrigger = 'start' | 'schedule' | 'overdue' | 'change' | 'api';

/** Where a running job is, refreshed about once a second. */
export interface JobProgress {
  readonly phase: string;
  readonly files: number;
  readonly bytes: number;
  readonly filesTotal?: number;
  readonly bytesTotal?: number;
  /** Bytes per second over the last few seconds. */
  readonly rateBytesPerSec: number;
  /** Seconds left at the current rate, when the total is known. */
  readonly etaSeconds?: number;
  /** Paths that could not be processed so far. */
  readonly errors: number;
}

/** Why a job failed: a stable code, a message for people, and what to do about it. */
export interface JobError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  /** The output of a failing hook (its last 64 KiB). */
  readonly output?: string;
}

/** A job's parameters: which source, snapshot, target... (by kind; JSON). */
export type JobParams = Readonly<Record<string, unknown>>;

/** A job as stored and as the API shows it. Times are ISO 8601. */
export interface Job {
  readonly id: string;
  readonly kind: JobKind;
  readonly state: JobState;
  readonly source?: string;
  readonly trigger: JobTrigger;
  readonly params: JobParams;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly progress?: JobProgress;
  readonly result?: Readonly<Record<string, unknown>>;
  readonly error?: JobError;
}

/** A job about to be queued. */
export type NewJob = Pick<Job, 'kind' | 'trigger' | 'params' | 'createdAt'> & { readonly source?: string };

/** What may change on a stored job. */
export type JobPatch = Partial<Pick<Job, 'state' | 'startedAt' | 'finishedAt' | 'progress' | 'result' | 'error'>>;
