import path from 'node:path';
import { CairnError } from '../core/errors.js';
import { backup } from '../engine/backup.js';
import { check } from '../engine/check.js';
import { restore } from '../engine/restore.js';
import { withLock } from '../repo/locks.js';
import type { Repository } from '../repo/repository.js';
import { resolveSnapshot } from '../repo/snapshots.js';
import { describeHook, runHook } from './hooks.js';
import type { Job, JobKind, JobParams } from './job.js';
import type { JobOutcome, JobRunner, RunContext } from './job-manager.js';

/** A source as the job layer needs it (the agent's config entries have this shape). */
export interface SourceSpec {
  readonly name: string;
  readonly paths: readonly string[];
  readonly excludes?: readonly string[];
  readonly oneFileSystem?: boolean;
  readonly tags?: readonly string[];
  readonly schedule: readonly string[];
  readonly hooks?: { readonly pre?: string; readonly post?: string; readonly timeoutSeconds?: number };
  readonly watch?: { readonly enabled?: boolean; readonly debounceSeconds?: number };
}

/** What the next backup of a source must scan (the change journal's plan). */
export interface ScanPlanLike {
  readonly full: boolean;
  readonly paths: number;
  mayHaveChanged(dir: string): boolean;
  commit(): void;
}

/** What the runners work with. */
export interface RunnerDeps {
  readonly repo: Repository;
  readonly source: (name: string) => SourceSpec | undefined;
  readonly agentName: string;
  readonly program: string;
  /** Whether restores set file owners (the agent runs as root). */
  readonly restoreOwners: boolean;
  /** The change journal's plan for a watched source's next backup. */
  readonly scanPlan?: (source: string) => ScanPlanLike | undefined;
}

/** How long a hook may run unless its source says otherwise. */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 300;
/** Unreadable paths named in a backup job's result (the count is always there). */
const SKIPPED_SHOWN = 20;

/** Checks a job's parameters against the configured sources before it is queued. */
export function admitJob(source: (name: string) => SourceSpec | undefined): (kind: JobKind, params: JobParams) => { source?: string } {
  return (kind, params) => {
    const name = typeof params.source === 'string' ? params.source : undefined;
    if (name !== undefined && !source(name)) throw new CairnError('E_SOURCE_NOT_FOUND', `source: no source named "${name}" is configured`, { hint: 'GET /v1/sources lists them' });
    if (kind === 'backup' && name === undefined) throw new CairnError('E_USAGE', 'source: a backup job needs the name of a configured source');
    if (kind === 'restore') {
      if (typeof params.target !== 'string' || !path.isAbsolute(params.target)) throw new CairnError('E_USAGE', 'target: a restore needs an absolute target path');
      if (typeof params.snapshot === 'string' && params.snapshot !== 'latest' && !/^[0-9a-f]{4,64}$/.test(params.snapshot)) throw new CairnError('E_USAGE', `snapshot: "${params.snapshot}" is not "latest" or a snapshot id (4 to 64 hex characters)`);
    }
    if (kind === 'check' && params.subset !== undefined && !/^[1-9]\d*\/[1-9]\d*$/.test(String(params.subset))) throw new CairnError('E_USAGE', `subset: "${String(params.subset)}" is not n/t, e.g. "1/10"`);
    return name !== undefined ? { source: name } : {};
  };
}

/** The runners of every job kind, over one repository. */
export function createRunners(deps: RunnerDeps): Record<JobKind, JobRunner> {
  return {
    backup: (job, ctx) => runBackupJob(deps, job, ctx),
    restore: (job, ctx) => runRestoreJob(deps, job, ctx),
    check: (job, ctx) => runCheckJob(deps, job, ctx),
  };
}

async function runBackupJob(deps: RunnerDeps, job: Job, ctx: RunContext): Promise<JobOutcome> {
  const src = deps.source(job.source ?? '');
  if (!src) throw new CairnError('E_SOURCE_NOT_FOUND', `source "${job.source}" is no longer configured`);
  const timeoutMs = (src.hooks?.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS) * 1000;
  const env = { CAIRN_SOURCE: src.name, CAIRN_JOB_ID: job.id, CAIRN_JOB_KIND: 'backup' };
  if (src.hooks?.pre) {
    ctx.progress.setPhase('pre hook');
    const pre = await runHook(src.hooks.pre, { timeoutMs, env, signal: ctx.signal });
    ctx.signal.throwIfAborted();
    if (!pre.ok) {
      const message = `${describeHook('pre', pre, timeoutMs)}; the backup did not run`;
      await postHook(src, ctx, env, timeoutMs, 'failed');
      return { result: { hook: 'pre' }, error: { code: 'E_HOOK_FAILED', message, output: pre.output, hint: 'fix the pre hook command (its output is in error.output) or remove it from the source' } };
    }
  }
  let outcome: JobOutcome;
  try {
    ctx.progress.setPhase('backup');
    outcome = await backupSource(deps, src, ctx);
  } catch (err) {
    await postHook(src, ctx, env, timeoutMs, ctx.signal.aborted ? 'cancelled' : 'failed');
    throw err;
  }
  const post = await postHook(src, ctx, env, timeoutMs, 'succeeded', String(outcome.result.snapshotId));
  return post ? { result: outcome.result, error: post } : outcome;
}

/** Runs the post hook, if any, whatever happened before (it may thaw what the pre hook froze):
 *  it gets its own timeout but not the job's cancel. Returns the error if it failed. */
async function postHook(src: SourceSpec, ctx: RunContext, env: Record<string, string>, timeoutMs: number, status: string, snapshotId?: string): Promise<{ code: string; message: string; output: string } | undefined> {
  if (!src.hooks?.post) return undefined;
  ctx.progress.setPhase('post hook');
  const r = await runHook(src.hooks.post, { timeoutMs, env: { ...env, CAIRN_JOB_STATUS: status, ...(snapshotId ? { CAIRN_SNAPSHOT_ID: snapshotId } : {}) } });
  if (r.ok) return undefined;
  ctx.log.error({ output: r.output }, describeHook('post', r, timeoutMs));
  return { code: 'E_HOOK_FAILED', message: `${describeHook('post', r, timeoutMs)}${snapshotId ? ` (the snapshot ${snapshotId.slice(0, 12)} was saved)` : ''}`, output: r.output };
}

async function backupSource(deps: RunnerDeps, src: SourceSpec, ctx: RunContext): Promise<JobOutcome> {
  const plan = deps.scanPlan?.(src.name);
  const r = await withLock(
    deps.repo,
    `backup of ${src.name} by agent ${deps.agentName}`,
    false,
    async (signal) => {
      // read under the lock, and anew for every run: other agents may share the repository
      await deps.repo.loadIndex({ signal });
      return backup(deps.repo, {
        paths: src.paths,
        excludes: src.excludes ?? [],
        oneFileSystem: src.oneFileSystem ?? false,
        tags: src.tags ?? [],
        source: { name: src.name, kind: 'folder' },
        agent: deps.agentName,
        program: deps.program,
        progress: ctx.progress,
        ...(plan && !plan.full ? { changes: plan } : {}),
        signal,
      });
    },
    ctx.signal,
  );
  plan?.commit();
  const s = r.snapshot.summary;
  return {
    result: {
      snapshotId: r.snapshotId,
      ...(r.parent ? { parent: r.parent } : {}),
      scan: plan && !plan.full ? 'changes' : 'full',
      filesNew: s.filesNew,
      filesChanged: s.filesChanged,
      filesUnmodified: s.filesUnmodified,
      dirs: s.dirs,
      bytesRead: s.bytesRead,
      bytesTotal: s.bytesTotal,
      bytesAdded: s.bytesAdded,
      durationMs: s.durationMs,
      errors: r.errors.length,
      ...(r.errors.length ? { skipped: r.errors.slice(0, SKIPPED_SHOWN) } : {}),
    },
  };
}

async function runRestoreJob(deps: RunnerDeps, job: Job, ctx: RunContext): Promise<JobOutcome> {
  const p = job.params as { snapshot?: string; target: string; include?: string[]; overwrite?: boolean };
  ctx.progress.setPhase('restore');
  return withLock(
    deps.repo,
    `restore by agent ${deps.agentName}`,
    false,
    async (signal) => {
      await deps.repo.loadIndex({ signal });
      const all = await deps.repo.listSnapshots({ signal });
      const { id, snapshot } = resolveSnapshot(all, p.snapshot ?? 'latest', { host: deps.repo.env.host, ...(job.source !== undefined ? { source: job.source } : {}) });
      const r = await restore(deps.repo, snapshot, { target: p.target, ...(p.include ? { includes: p.include } : {}), overwrite: p.overwrite === true, owners: deps.restoreOwners, progress: ctx.progress, signal });
      return { result: { snapshotId: id, target: p.target, files: r.files, dirs: r.dirs, bytes: r.bytes, errors: r.errors.length, ...(r.errors.length ? { skipped: r.errors.slice(0, SKIPPED_SHOWN) } : {}) } };
    },
    ctx.signal,
  );
}

async function runCheckJob(deps: RunnerDeps, job: Job, ctx: RunContext): Promise<JobOutcome> {
  const subset = typeof job.params.subset === 'string' ? /^(\d+)\/(\d+)$/.exec(job.params.subset) : null;
  const readData = subset ? { n: Number(subset[1]), t: Number(subset[2]) } : job.params.readData === true;
  ctx.progress.setPhase(readData ? 'check (reading data)' : 'check');
  const report = await withLock(deps.repo, `check by agent ${deps.agentName}`, false, (signal) => check(deps.repo, { readData, progress: ctx.progress, signal }), ctx.signal);
  const result = { snapshots: report.snapshots, packs: report.packs, blobs: report.blobs, packsRead: report.packsRead, errors: report.errors.slice(0, 50), warnings: report.warnings.slice(0, 50), errorCount: report.errors.length };
  if (report.errors.length === 0) return { result };
  return { result, error: { code: 'E_INTEGRITY', message: `check found ${report.errors.length} error(s); first: ${report.errors[0]!.message}`, hint: 'see result.errors for the affected snapshots and files' } };
}
