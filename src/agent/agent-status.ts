import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { AgentStatus } from '../api/app.js';
import type { SnapshotView, SourceView, Summary } from '../api/schemas.js';
import type { Clock } from '../jobs/clock.js';
import type { JobManager } from '../jobs/job-manager.js';
import type { JobStore } from '../jobs/job-store.js';
import type { WatcherState } from '../jobs/change-journal.js';
import { RecentFiresCache } from '../jobs/schedule.js';
import { type AgentFacts, type Health, type SourceProtection, judgeHealth, judgeSource } from '../jobs/status.js';
import type { SourceSpec } from '../jobs/runners.js';
import type { Repository } from '../repo/repository.js';

/** Below this much free space (or 2% of the file system) the state or repository disk is low. */
const LOW_DISK_BYTES = 1024 ** 3;
/** How long a listing of snapshots is served from memory: listing reads every manifest. */
const SNAPSHOT_CACHE_MS = 10_000;
/** How long a health or summary answer is served from memory: a console polling many times a
 *  second sees the agent's state at most this old (and fresh after any job ends), and the
 *  backup's thread does not pay for every poll. */
const ANSWER_CACHE_MS = 1_000;

/** What the status provider reads. */
export interface StatusDeps {
  readonly agentName: string;
  readonly version: string;
  readonly repo: Repository;
  readonly store: JobStore;
  readonly jobs: Pick<JobManager, 'running' | 'queued'>;
  readonly clock: Clock;
  readonly stateDir: string;
  readonly localRepoPath?: string;
  sources(): readonly SourceSpec[];
  nextRunMs(source: string): number | undefined;
  watcher(source: string): { state: WatcherState; reason: string | undefined } | undefined;
}

/**
 * The agent's answers to the API's reads. The slow facts (repository reachable, disk space,
 * source paths present) are probed in the background every probe interval, so /health stays
 * cheap under a console's polling; job facts come from the store on each request.
 */
export class AgentStatusProvider implements AgentStatus {
  readonly #d: StatusDeps;
  #facts: AgentFacts = { diskProblems: [], watcherProblems: [] };
  #missing = new Map<string, string[]>();
  #snapshots: { atMs: number; list: Promise<SnapshotView[]> } | undefined;
  readonly #fires = new RecentFiresCache();
  #answers: { atMs: number; health?: Health; summary?: Summary } = { atMs: -Infinity };

  constructor(deps: StatusDeps) {
    this.#d = deps;
  }

  /** Refreshes the slow facts; the agent calls it at start, on a timer and after each job. */
  async probe(): Promise<void> {
    let repositoryProblem: string | undefined;
    try {
      await this.#d.repo.store.stat({ kind: 'config', name: 'cairn.json' });
    } catch (err) {
      repositoryProblem = `repository ${this.#d.repo.store.location} cannot be reached: ${(err as Error).message}`;
    }
    const diskProblems: string[] = [];
    for (const [what, dir] of [['state', this.#d.stateDir], ['repository', this.#d.localRepoPath]] as const) {
      if (!dir) continue;
      const s = await statfs(dir).catch(() => undefined);
      if (!s) continue;
      const free = s.bavail * s.bsize;
      if (free < LOW_DISK_BYTES || free < 0.02 * s.blocks * s.bsize) diskProblems.push(`${what} folder ${dir}: only ${(free / 1024 ** 2).toFixed(0)} MiB free`);
    }
    this.#missing = new Map(this.#d.sources().map((s) => [s.name, s.paths.filter((p) => !existsSync(p))]));
    this.#facts = { ...(repositoryProblem ? { repositoryProblem } : {}), diskProblems, watcherProblems: [] };
  }

  /** Where the repository is, for logs. */
  get repositoryLocation(): string {
    return this.#d.repo.store.location;
  }

  /** Forgets cached answers (a job just ended): the next request computes them afresh; the
   *  snapshot listing too when `snapshots` (a backup may have added one). */
  invalidate(snapshots: boolean): void {
    this.#answers = { atMs: -Infinity };
    if (snapshots) this.#snapshots = undefined;
  }

  /** The cached answers while fresh, else a new empty cache. */
  #fresh(): { atMs: number; health?: Health; summary?: Summary } {
    const now = this.#d.clock.now();
    if (now - this.#answers.atMs >= ANSWER_CACHE_MS || now < this.#answers.atMs) this.#answers = { atMs: now };
    return this.#answers;
  }

  #protection(s: SourceSpec): { protection: SourceProtection; lastBackup?: ReturnType<JobStore['latest']>; lastSuccess?: ReturnType<JobStore['latest']> } {
    const lastBackup = this.#d.store.latest(s.name, 'backup', ['succeeded', 'failed', 'interrupted', 'running']);
    const lastSuccess = lastBackup?.state === 'succeeded' ? lastBackup : this.#d.store.latest(s.name, 'backup', ['succeeded']);
    const now = this.#d.clock.now();
    const protection = judgeSource({ name: s.name, schedule: s.schedule, missingPaths: this.#missing.get(s.name) ?? [], ...(lastBackup ? { lastBackup } : {}), ...(lastSuccess ? { lastSuccess } : {}) }, now, this.#fires.get(s.schedule, now));
    return { protection, ...(lastBackup ? { lastBackup } : {}), ...(lastSuccess ? { lastSuccess } : {}) };
  }

  sources(): SourceView[] {
    return this.#d.sources().map((s) => {
      const { protection, lastBackup, lastSuccess } = this.#protection(s);
      const next = this.#d.nextRunMs(s.name);
      const snapshotId = lastBackup?.result?.snapshotId;
      return {
        name: s.name,
        kind: 'folder',
        paths: [...s.paths],
        excludes: [...(s.excludes ?? [])],
        tags: [...(s.tags ?? [])],
        schedule: [...s.schedule],
        watch: s.watch?.enabled === true,
        ...(next !== undefined ? { nextRunAt: new Date(next).toISOString() } : {}),
        protection,
        ...(lastBackup ? { lastBackup: { jobId: lastBackup.id, state: lastBackup.state, ...(lastBackup.finishedAt ? { finishedAt: lastBackup.finishedAt } : {}), ...(typeof snapshotId === 'string' ? { snapshotId } : {}), ...(lastBackup.error ? { error: lastBackup.error.message } : {}) } } : {}),
        ...(lastSuccess?.finishedAt ? { lastSuccessAt: lastSuccess.finishedAt } : {}),
      };
    });
  }

  summary(): Summary {
    const cache = this.#fresh();
    return (cache.summary ??= this.#summary());
  }

  #summary(): Summary {
    const counts = this.#d.store.countSince(this.#d.clock.now() - 24 * 3600_000);
    const byKind: Record<string, Record<string, number>> = {};
    for (const c of counts) (byKind[c.kind] ??= {})[c.state] = c.count;
    const states = this.#d.sources().map((s) => this.#protection(s).protection.state);
    const n = (st: string): number => states.filter((x) => x === st).length;
    const running = this.#d.jobs.running();
    return {
      agent: this.#d.agentName,
      version: this.#d.version,
      jobsLast24h: { total: counts.reduce((a, c) => a + c.count, 0), byKind },
      sources: { total: states.length, protected: n('protected'), late: n('late'), failing: n('failing'), neverBackedUp: n('never-backed-up'), sourceMissing: n('source-missing'), softDeleted: 0 },
      ...(running ? { running } : {}),
      queued: this.#d.jobs.queued,
    };
  }

  health(): Health {
    try {
      const cache = this.#fresh();
      return (cache.health ??= this.#health());
    } catch (err) {
      // the job database is what failed (the other facts are cached): say so, not a 500
      return judgeHealth({ ...this.#facts, watcherProblems: [], stateProblem: `the job database cannot be read: ${(err as Error).message}` }, []);
    }
  }

  #health(): Health {
    const watcherProblems = this.#d.sources().flatMap((s) => {
      const w = this.#d.watcher(s.name);
      return w?.state === 'failed' ? [{ source: s.name, message: `${s.name}: change watcher failed (${w.reason ?? 'unknown'}); backups fall back to full scans` }] : [];
    });
    return judgeHealth({ ...this.#facts, watcherProblems }, this.#d.sources().map((s) => ({ name: s.name, protection: this.#protection(s).protection })));
  }

  /** Snapshots newest first; one listing serves every caller for a few seconds (it is shared,
   *  so no one caller's disconnect cancels it). */
  snapshots(filter: { source?: string; host?: string }): Promise<SnapshotView[]> {
    const now = this.#d.clock.now();
    if (!this.#snapshots || now - this.#snapshots.atMs > SNAPSHOT_CACHE_MS) {
      const list = this.#d.repo.listSnapshots().then((all) =>
        all.reverse().map((e) => ({
          id: e.id,
          time: e.snapshot.time,
          host: e.snapshot.host,
          ...(e.snapshot.agent !== undefined ? { agent: e.snapshot.agent } : {}),
          source: e.snapshot.source.name,
          paths: [...e.snapshot.paths],
          tags: [...e.snapshot.tags],
          ...(e.snapshot.parent !== undefined ? { parent: e.snapshot.parent } : {}),
          deleted: false,
          summary: { ...e.snapshot.summary },
        })),
      );
      this.#snapshots = { atMs: now, list };
      list.catch(() => (this.#snapshots = undefined));
    }
    return this.#snapshots.list.then((all) => all.filter((s) => (filter.source === undefined || s.source === filter.source) && (filter.host === undefined || s.host === filter.host)));
  }
}
