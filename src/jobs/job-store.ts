import { CairnError } from '../core/errors.js';
import type { Job, JobKind, JobPatch, JobState, NewJob } from './job.js';

/** Which jobs to list. */
export interface JobFilter {
  readonly states?: readonly JobState[];
  readonly kind?: JobKind;
  readonly source?: string;
  /** Jobs created at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
}

/** One page of jobs, newest first, and the cursor of the next page if there is one. */
export interface JobPage {
  readonly jobs: readonly Job[];
  readonly next?: string;
}

/** Counts of jobs by kind and state. */
export interface JobCount {
  readonly kind: JobKind;
  readonly state: JobState;
  readonly count: number;
}

/**
 * JobStore keeps the job history. Every call is synchronous and atomic: a job is never seen half
 * updated, and an insert or update that returned is durable against a crash of the process.
 * Ids are decimal strings that grow with each insert, so newer jobs sort after older ones. list
 * pages newest first; its cursors are opaque and stay valid while jobs are added. Unknown ids:
 * get returns undefined; update throws E_JOB_NOT_FOUND. Not safe across processes beyond what
 * SQLite gives (one agent owns a state directory).
 */
export interface JobStore {
  insert(job: NewJob): Job;
  update(id: string, patch: JobPatch): Job;
  get(id: string): Job | undefined;
  list(filter: JobFilter, limit: number, cursor?: string): JobPage;
  /** The newest job of a source and kind whose state is one of `states`. */
  latest(source: string, kind: JobKind, states?: readonly JobState[]): Job | undefined;
  /** Jobs created at or after sinceMs, counted by kind and state. */
  countSince(sinceMs: number): JobCount[];
  /** Marks every queued or running job interrupted (at start, after a crash); returns them. */
  interruptLeftovers(finishedAt: string, reason: string): Job[];
  /** Deletes finished jobs created before beforeMs; returns how many. */
  expire(beforeMs: number): number;
  close(): void;
}

/** Page cursors are the id of the last job shown, base64url-wrapped so clients treat them as opaque. */
export function encodeCursor(id: string): string {
  return Buffer.from(`job:${id}`).toString('base64url');
}

/** The id inside a cursor; a cursor this API did not give is a usage error. */
export function decodeCursor(cursor: string): number {
  const m = /^job:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new CairnError('E_USAGE', `cursor "${cursor.slice(0, 40)}" is not one this agent gave`, { hint: 'pass the "next" value of the previous page unchanged, or leave cursor out for the first page' });
  return Number(m[1]);
}

/** Whether a job matches a filter (the memory store's query, and a test oracle). */
export function matchesJobFilter(job: Job, f: JobFilter): boolean {
  return (
    (f.states === undefined || f.states.includes(job.state)) &&
    (f.kind === undefined || job.kind === f.kind) &&
    (f.source === undefined || job.source === f.source) &&
    (f.sinceMs === undefined || Date.parse(job.createdAt) >= f.sinceMs)
  );
}

/** A JobStore in memory, for unit tests; it passes the same contract suite as the SQLite one. */
export function createMemoryJobStore(): JobStore {
  const jobs = new Map<number, Job>();
  let nextId = 1;
  const must = (id: string): Job => {
    const j = jobs.get(Number(id));
    if (!j) throw new CairnError('E_JOB_NOT_FOUND', `no job ${id}`);
    return j;
  };
  const newestFirst = (): Job[] => [...jobs.values()].reverse();
  return {
    insert(job) {
      const id = nextId++;
      const stored: Job = { ...job, id: String(id), state: 'queued' };
      jobs.set(id, stored);
      return stored;
    },
    update(id, patch) {
      const j = { ...must(id), ...patch };
      jobs.set(Number(id), j);
      return j;
    },
    get: (id) => (/^\d+$/.test(id) ? jobs.get(Number(id)) : undefined),
    list(filter, limit, cursor) {
      const after = cursor === undefined ? Infinity : decodeCursor(cursor);
      const hits = newestFirst().filter((j) => Number(j.id) < after && matchesJobFilter(j, filter));
      const page = hits.slice(0, limit);
      return { jobs: page, ...(hits.length > limit ? { next: encodeCursor(page[page.length - 1]!.id) } : {}) };
    },
    latest: (source, kind, states) => newestFirst().find((j) => j.source === source && j.kind === kind && (states === undefined || states.includes(j.state))),
    countSince(sinceMs) {
      const counts = new Map<string, JobCount>();
      for (const j of jobs.values()) {
        if (Date.parse(j.createdAt) < sinceMs) continue;
        const k = `${j.kind}/${j.state}`;
        counts.set(k, { kind: j.kind, state: j.state, count: (counts.get(k)?.count ?? 0) + 1 });
      }
      return [...counts.values()];
    },
    interruptLeftovers(finishedAt, reason) {
      const left = [...jobs.values()].filter((j) => j.state === 'queued' || j.state === 'running');
      return left.map((j) => this.update(j.id, { state: 'interrupted', finishedAt, error: { code: 'E_INTERRUPTED', message: reason } }));
    },
    expire(beforeMs) {
      let n = 0;
      for (const [id, j] of jobs) {
        if (j.state !== 'queued' && j.state !== 'running' && Date.parse(j.createdAt) < beforeMs) {
          jobs.delete(id);
          n++;
        }
      }
      return n;
    },
    close() {},
  };
}
