import type { Job } from './job.js';
import { type RecentFires, prevFire } from './schedule.js';

/** How well a source is protected (the console's tiles). */
export type ProtectionState = 'protected' | 'late' | 'failing' | 'never-backed-up' | 'source-missing';

/** What is known of a source, to judge its protection. */
export interface SourceFacts {
  readonly name: string;
  readonly schedule: readonly string[];
  /** Paths of the source that do not exist now. */
  readonly missingPaths: readonly string[];
  readonly lastBackup?: Job;
  readonly lastSuccess?: Job;
}

/** A source's protection state and why. */
export interface SourceProtection {
  readonly state: ProtectionState;
  readonly reason?: string;
}

/**
 * Judges a source: missing paths first (the next backup cannot be right), then never backed up,
 * then failing (its newest finished backup failed or was interrupted), then late (its last good
 * backup is older than the fire time before the latest one: a whole scheduled run was missed,
 * i.e. its recovery point objective is broken), else protected. Reads no clock: `nowMs` is given,
 * and `fires` (the schedule's recent fire times, from a RecentFiresCache) when the caller has them.
 */
export function judgeSource(f: SourceFacts, nowMs: number, fires?: RecentFires): SourceProtection {
  if (f.missingPaths.length > 0) return { state: 'source-missing', reason: `${f.missingPaths.join(', ')} ${f.missingPaths.length === 1 ? 'does' : 'do'} not exist` };
  if (!f.lastSuccess) {
    const last = f.lastBackup;
    if (last && (last.state === 'failed' || last.state === 'interrupted')) return { state: 'failing', reason: `never backed up; the last attempt ${last.state}${last.error ? `: ${last.error.message}` : ''}` };
    return { state: 'never-backed-up', reason: last?.state === 'running' ? 'the first backup is running' : 'no backup has succeeded yet' };
  }
  const last = f.lastBackup;
  if (last && last.id !== f.lastSuccess.id && (last.state === 'failed' || last.state === 'interrupted')) {
    return { state: 'failing', reason: `the last backup ${last.state}${last.error ? `: ${last.error.message}` : ''}` };
  }
  const latest = fires ? fires.latest : prevFire(f.schedule, nowMs);
  const before = fires ? fires.before : latest === undefined ? undefined : prevFire(f.schedule, latest - 1);
  const okAt = Date.parse(f.lastSuccess.startedAt ?? f.lastSuccess.createdAt);
  if (before !== undefined && okAt < before) {
    return { state: 'late', reason: `the last good backup started ${new Date(okAt).toISOString()}, before the scheduled run of ${new Date(before).toISOString()}` };
  }
  return { state: 'protected' };
}

/** The agent's health: ok, degraded (working, but something needs attention) or failing
 *  (backups cannot work now), with one reason per problem. */
export interface Health {
  readonly status: 'ok' | 'degraded' | 'failing';
  readonly reasons: readonly { readonly code: string; readonly message: string; readonly source?: string }[];
}

/** Facts about the agent as a whole, for its health. */
export interface AgentFacts {
  /** Why the repository cannot be reached, if it cannot. */
  readonly repositoryProblem?: string;
  /** Why the job database cannot be used, if it cannot. */
  readonly stateProblem?: string;
  /** Disk-space problems of the state and repository folders. */
  readonly diskProblems: readonly string[];
  /** Watchers that failed, by source. */
  readonly watcherProblems: readonly { source: string; message: string }[];
}

/** Folds the agent's and sources' facts into one health answer. */
export function judgeHealth(agent: AgentFacts, sources: readonly { name: string; protection: SourceProtection }[]): Health {
  const failing: Health['reasons'][number][] = [];
  const degraded: Health['reasons'][number][] = [];
  if (agent.repositoryProblem) failing.push({ code: 'repository-unreachable', message: agent.repositoryProblem });
  if (agent.stateProblem) failing.push({ code: 'state-unusable', message: agent.stateProblem });
  for (const d of agent.diskProblems) degraded.push({ code: 'disk-space-low', message: d });
  for (const w of agent.watcherProblems) degraded.push({ code: 'watcher-failed', message: w.message, source: w.source });
  for (const s of sources) {
    if (s.protection.state === 'protected') continue;
    degraded.push({ code: `source-${s.protection.state}`, message: `${s.name}: ${s.protection.reason ?? s.protection.state}`, source: s.name });
  }
  return { status: failing.length ? 'failing' : degraded.length ? 'degraded' : 'ok', reasons: [...failing, ...degraded] };
}
