import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { CairnError } from '../core/errors.js';
import type { EngineOps } from './engine-ops.js';
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

/** What the next backup of a source must scan (the change journal's plan, as the runner uses
 *  it: the paths cross to the engine worker as data). */
export interface ScanPlanLike {
  readonly full: boolean;
  readonly changed: readonly string[];
  readonly base: string | undefined;
  commit(snapshotId: string): void;
}

/** What the runners work with. */
export interface RunnerDeps {
  /** The engine's operations (in this thread, or in the agent's engine worker). */
  readonly engine: EngineOps;
  readonly source: (name: string) => SourceSpec | undefined;
  /** Whether restores set file owners (the agent runs as root). */
  readonly restoreOwners: boolean;
  /** Folders restores may write into. */
  readonly restoreRoots?: () => readonly string[];
  /** The change journal's plan for a watched source's next backup. */
  readonly scanPlan?: (source: string) => ScanPlanLike | undefined;
  /** Environment variables that hold secrets (the repository password, API tokens): hooks do
   *  not see them. */
  readonly secretEnv?: readonly string[];
}

/** How long a hook may run unless its source says otherwise. */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 300;
/** After a cancel or at shutdown, the post hook gets at most this long: the agent must stop
 *  within 10 s, and a post hook that thaws or resumes something is quick. */
const POST_HOOK_AFTER_CANCEL_MS = 5_000;

/** Checks a job's parameters against the configured sources (and, for restores, the folders
 *  restores may write into) before it is queued. */
export function admitJob(source: (name: string) => SourceSpec | undefined, restoreRoots: () => readonly string[] = () => ['/']): (kind: JobKind, params: JobParams) => { source?: string } {
  return (kind, params) => {
    const name = typeof params.source === 'string' ? params.source : undefined;
    if (name !== undefined && !source(name)) throw new CairnError('E_SOURCE_NOT_FOUND', `source: no source named "${name}" is configured`, { hint: 'GET /v1/sources lists them' });
    if (kind === 'backup' && name === undefined) throw new CairnError('E_USAGE', 'source: a backup job needs the name of a configured source');
    if (kind === 'restore') {
      if (typeof params.target !== 'string' || !path.isAbsolute(params.target)) throw new CairnError('E_USAGE', 'target: a restore needs an absolute target path');
      if (!insideAny(path.resolve(params.target), restoreRoots())) throw new CairnError('E_USAGE', `target: ${params.target} is outside the folders restores may write into (${restoreRoots().join(', ')})`, { hint: 'restore under one of them, or add a folder to agent.restoreRoots in the config' });
      if (typeof params.snapshot === 'string' && params.snapshot !== 'latest' && !/^[0-9a-f]{4,64}$/.test(params.snapshot)) throw new CairnError('E_USAGE', `snapshot: "${params.snapshot}" is not "latest" or a snapshot id (4 to 64 hex characters)`);
    }
    if (kind === 'check' && params.subset !== undefined && !/^[1-9]\d*\/[1-9]\d*$/.test(String(params.subset))) throw new CairnError('E_USAGE', `subset: "${String(params.subset)}" is not n/t, e.g. "1/10"`);
    return name !== undefined ? { source: name } : {};
  };
}

/** Whether `p` is one of `roots` or inside one (all absolute and resolved). */
function insideAny(p: string, roots: readonly string[]): boolean {
  return roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`));
}

/** Checks, just before a restore writes, that the target's real path (symbolic links resolved
 *  as far as it exists) is still inside a restore root: a link planted inside a root, by an
 *  earlier restore say, must not lead the restore out of it. Roots are resolved the same way: a
 *  root that does not exist yet (the default one, before the first restore) still counts. */
async function checkRestoreTarget(target: string, roots: readonly string[]): Promise<void> {
  const real = await realAsFarAsItExists(target);
  const realRoots = await Promise.all(roots.map(realAsFarAsItExists));
  if (!insideAny(real, realRoots)) throw new CairnError('E_USAGE', `target: ${target} leads to ${real}, outside the folders restores may write into`, { hint: 'a symbolic link on the way leaves the restore roots; restore elsewhere' });
}

/** The real path of `p` as far as it exists, followed by the rest of it (which does not exist,
 *  so holds no link). */
async function realAsFarAsItExists(p: string): Promise<string> {
  let existing = path.resolve(p);
  const missing: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(existing), ...missing.reverse());
    } catch (err) {
      const parent = path.dirname(existing);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === existing) throw err;
      missing.push(path.basename(existing));
      existing = parent;
    }
  }
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
  const hook: HookContext = {
    src,
    ctx,
    timeoutMs: (src.hooks?.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS) * 1000,
    env: { CAIRN_SOURCE: src.name, CAIRN_JOB_ID: job.id, CAIRN_JOB_KIND: 'backup' },
    unsetEnv: deps.secretEnv ?? [],
  };
  // from here on the post hook runs whatever happens: it may thaw what the pre hook froze
  let outcome: JobOutcome;
  try {
    outcome = (await preHook(hook)) ?? (await backupSource(deps, src, ctx));
  } catch (err) {
    await postHook(hook, ctx.signal.aborted ? 'cancelled' : 'failed');
    throw err;
  }
  const snapshotId = typeof outcome.result.snapshotId === 'string' ? outcome.result.snapshotId : undefined;
  const post = await postHook(hook, outcome.error ? 'failed' : 'succeeded', snapshotId);
  return post ? { result: outcome.result, error: post } : outcome;
}

/** What the hooks of one backup job share. */
interface HookContext {
  readonly src: SourceSpec;
  readonly ctx: RunContext;
  readonly timeoutMs: number;
  readonly env: Record<string, string>;
  readonly unsetEnv: readonly string[];
}

/** Runs the pre hook, if any: undefined when the backup may go on, the job's outcome when the
 *  hook failed; throws when the job was cancelled meanwhile. */
async function preHook(h: HookContext): Promise<JobOutcome | undefined> {
  if (!h.src.hooks?.pre) return undefined;
  h.ctx.progress.setPhase('pre hook');
  const pre = await runHook(h.src.hooks.pre, { timeoutMs: h.timeoutMs, env: h.env, unsetEnv: h.unsetEnv, signal: h.ctx.signal });
  h.ctx.signal.throwIfAborted();
  if (pre.ok) return undefined;
  const message = `${describeHook('pre', pre, h.timeoutMs)}; the backup did not run`;
  return { result: { hook: 'pre' }, error: { code: 'E_HOOK_FAILED', message, output: pre.output, hint: 'fix the pre hook command (its output is in error.output) or remove it from the source' } };
}

/** Runs the post hook, if any, whatever happened before. It gets its own timeout but not the
 *  job's cancel; after a cancel (or at shutdown) the timeout is cut to POST_HOOK_AFTER_CANCEL_MS.
 *  Returns the error if it failed. */
async function postHook(h: HookContext, status: string, snapshotId?: string): Promise<{ code: string; message: string; output: string } | undefined> {
  if (!h.src.hooks?.post) return undefined;
  h.ctx.progress.setPhase('post hook');
  const timeoutMs = h.ctx.signal.aborted ? Math.min(h.timeoutMs, POST_HOOK_AFTER_CANCEL_MS) : h.timeoutMs;
  const r = await runHook(h.src.hooks.post, { timeoutMs, unsetEnv: h.unsetEnv, env: { ...h.env, CAIRN_JOB_STATUS: status, ...(snapshotId ? { CAIRN_SNAPSHOT_ID: snapshotId } : {}) } });
  if (r.ok) return undefined;
  h.ctx.log.error({ exitCode: r.exitCode, timedOut: r.timedOut }, `${describeHook('post', r, timeoutMs)}; its output is in the job's error`);
  return { code: 'E_HOOK_FAILED', message: `${describeHook('post', r, timeoutMs)}${snapshotId ? ` (the snapshot ${snapshotId.slice(0, 12)} was saved)` : ''}`, output: r.output };
}

async function backupSource(deps: RunnerDeps, src: SourceSpec, ctx: RunContext): Promise<JobOutcome> {
  const plan = deps.scanPlan?.(src.name);
  const r = await deps.engine.backup(
    {
      source: { name: src.name, paths: src.paths, excludes: src.excludes ?? [], oneFileSystem: src.oneFileSystem ?? false, tags: src.tags ?? [] },
      ...(plan && !plan.full && plan.base !== undefined ? { changes: { base: plan.base, paths: plan.changed } } : {}),
    },
    { signal: ctx.signal, progress: ctx.progress },
  );
  plan?.commit(r.snapshotId);
  return {
    result: {
      snapshotId: r.snapshotId,
      ...(r.parent ? { parent: r.parent } : {}),
      scan: r.narrowed ? 'changes' : 'full',
      ...r.summary,
      errors: r.errorCount,
      ...(r.errorCount ? { skipped: r.errors } : {}),
    },
  };
}

async function runRestoreJob(deps: RunnerDeps, job: Job, ctx: RunContext): Promise<JobOutcome> {
  const p = job.params as { snapshot?: string; target: string; include?: string[]; overwrite?: boolean };
  ctx.progress.setPhase('restore');
  if (deps.restoreRoots) await checkRestoreTarget(p.target, deps.restoreRoots());
  const r = await deps.engine.restore(
    { snapshot: p.snapshot ?? 'latest', ...(job.source !== undefined ? { source: job.source } : {}), target: p.target, ...(p.include ? { include: p.include } : {}), overwrite: p.overwrite === true, owners: deps.restoreOwners },
    { signal: ctx.signal, progress: ctx.progress },
  );
  return { result: { snapshotId: r.snapshotId, target: p.target, files: r.files, dirs: r.dirs, bytes: r.bytes, errors: r.errorCount, ...(r.errorCount ? { skipped: r.errors } : {}) } };
}

async function runCheckJob(deps: RunnerDeps, job: Job, ctx: RunContext): Promise<JobOutcome> {
  const subset = typeof job.params.subset === 'string' ? /^(\d+)\/(\d+)$/.exec(job.params.subset) : null;
  const readData = subset ? { n: Number(subset[1]), t: Number(subset[2]) } : job.params.readData === true;
  ctx.progress.setPhase(readData ? 'check (reading data)' : 'check');
  const report = await deps.engine.check({ readData }, { signal: ctx.signal, progress: ctx.progress });
  const result = { snapshots: report.snapshots, packs: report.packs, blobs: report.blobs, packsRead: report.packsRead, errors: report.errors, warnings: report.warnings, errorCount: report.errorCount };
  if (report.errorCount === 0) return { result };
  return { result, error: { code: 'E_INTEGRITY', message: `check found ${report.errorCount} error(s); first: ${report.errors[0]!.message}`, hint: 'see result.errors for the affected snapshots and files' } };
}
