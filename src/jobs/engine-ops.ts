import type { SnapshotId } from '../core/ids.js';
import { backup } from '../engine/backup.js';
import { type CheckProblem, check } from '../engine/check.js';
import type { ProgressSink } from '../engine/progress.js';
import { restore } from '../engine/restore.js';
import { withLock } from '../repo/locks.js';
import type { Repository } from '../repo/repository.js';
import { resolveSnapshot } from '../repo/snapshots.js';
import { PathIndex } from './path-index.js';

/** A backup as a job asks for it: plain data, so it can cross to a worker thread. */
export interface BackupSpec {
  readonly source: { readonly name: string; readonly paths: readonly string[]; readonly excludes: readonly string[]; readonly oneFileSystem: boolean; readonly tags: readonly string[] };
  /** The change journal's paths since snapshot `base`, when the walk may be narrowed. */
  readonly changes?: { readonly base: string; readonly paths: readonly string[] };
}

/** What a backup did. */
export interface BackupOutcome {
  readonly snapshotId: string;
  readonly parent?: string;
  readonly narrowed: boolean;
  readonly summary: Readonly<Record<string, number>>;
  readonly errorCount: number;
  /** The first unreadable paths. */
  readonly errors: readonly { path: string; message: string }[];
}

/** A restore as a job asks for it. */
export interface RestoreSpec {
  readonly snapshot: string;
  readonly source?: string;
  readonly target: string;
  readonly include?: readonly string[];
  readonly overwrite: boolean;
  readonly owners: boolean;
}

/** What a restore did. */
export interface RestoreOutcome {
  readonly snapshotId: string;
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly errorCount: number;
  readonly errors: readonly { path: string; message: string }[];
}

/** What a check found. */
export interface CheckOutcome {
  readonly snapshots: number;
  readonly packs: number;
  readonly blobs: number;
  readonly packsRead: number;
  readonly errorCount: number;
  readonly errors: readonly CheckProblem[];
  readonly warnings: readonly CheckProblem[];
}

/** How an operation reports and is stopped. */
export interface OpContext {
  readonly signal: AbortSignal;
  readonly progress: ProgressSink;
}

/**
 * The engine's operations as jobs use them: each takes the repository lock, reads the index
 * anew (other agents may share the repository) and runs. Specs and outcomes are plain data, so
 * an implementation may run them in another thread (the agent runs them in a worker, so the
 * API's thread never waits behind a backup's). Rejects with the engine's CairnErrors; a cancel
 * rejects with an abort error.
 */
export interface EngineOps {
  backup(spec: BackupSpec, ctx: OpContext): Promise<BackupOutcome>;
  restore(spec: RestoreSpec, ctx: OpContext): Promise<RestoreOutcome>;
  check(spec: { readonly readData: boolean | { readonly n: number; readonly t: number } }, ctx: OpContext): Promise<CheckOutcome>;
}

/** Problems listed in an outcome (the counts are always whole). */
const LISTED = 20;

/** The engine operations on a repository of this thread. */
export function createLocalEngineOps(repo: Repository, who: { readonly agentName: string; readonly program: string }): EngineOps {
  return {
    backup: (spec, ctx) =>
      withLock(repo, `backup of ${spec.source.name} by agent ${who.agentName}`, false, async (signal) => {
        await repo.loadIndex({ signal });
        const index = spec.changes ? new PathIndex(spec.changes.paths) : undefined;
        const r = await backup(repo, {
          paths: spec.source.paths,
          excludes: spec.source.excludes,
          oneFileSystem: spec.source.oneFileSystem,
          tags: spec.source.tags,
          source: { name: spec.source.name, kind: 'folder' },
          agent: who.agentName,
          program: who.program,
          progress: ctx.progress,
          ...(spec.changes && index ? { changes: { base: spec.changes.base as SnapshotId, mayHaveChanged: (d: string) => index.mayHaveChanged(d) } } : {}),
          signal,
        });
        return { snapshotId: r.snapshotId, ...(r.parent ? { parent: r.parent } : {}), narrowed: r.narrowed, summary: { ...r.snapshot.summary }, errorCount: r.errors.length, errors: r.errors.slice(0, LISTED) };
      }, ctx.signal),
    restore: (spec, ctx) =>
      withLock(repo, `restore by agent ${who.agentName}`, false, async (signal) => {
        await repo.loadIndex({ signal });
        const all = await repo.listSnapshots({ signal });
        const { id, snapshot } = resolveSnapshot(all, spec.snapshot, { host: repo.env.host, ...(spec.source !== undefined ? { source: spec.source } : {}) });
        const r = await restore(repo, snapshot, { target: spec.target, ...(spec.include ? { includes: spec.include } : {}), overwrite: spec.overwrite, owners: spec.owners, progress: ctx.progress, signal });
        return { snapshotId: id, files: r.files, dirs: r.dirs, bytes: r.bytes, errorCount: r.errors.length, errors: r.errors.slice(0, LISTED) };
      }, ctx.signal),
    check: (spec, ctx) =>
      withLock(repo, `check by agent ${who.agentName}`, false, async (signal) => {
        const r = await check(repo, { readData: spec.readData, progress: ctx.progress, signal });
        return { snapshots: r.snapshots, packs: r.packs, blobs: r.blobs, packsRead: r.packsRead, errorCount: r.errors.length, errors: r.errors.slice(0, 50), warnings: r.warnings.slice(0, 50) };
      }, ctx.signal),
  };
}
