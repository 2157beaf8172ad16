import type { Command } from 'commander';
import { restore } from '../../engine/restore.js';
import { resolveSnapshot } from '../../repo/snapshots.js';
import { type GlobalOptions, openRepo, withLock } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { emit, formatBytes, progressFor } from '../output.js';

/** Registers `cairn restore`. */
export function registerRestore(program: Command, globals: () => GlobalOptions, signal: AbortSignal): void {
  program
    .command('restore')
    .argument('<snapshot>', 'snapshot id, prefix, or "latest"')
    .requiredOption('-t, --target <dir>', 'where to restore: a backed-up path P lands at <dir>/P')
    .option('-i, --include <path>', 'restore only this absolute path of the snapshot (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--overwrite', 'restore into a target that is not empty, replacing files')
    .option('--host <host>', 'with "latest": the latest snapshot of this host')
    .description('restore a snapshot, or parts of it; every blob is verified as it is read')
    .action(async (ref: string, o: { target: string; include: string[]; overwrite?: boolean; host?: string }) => {
      const g = globals();
      const repo = await openRepo(g, { index: true, signal });
      const { id, snapshot } = resolveSnapshot(await repo.listSnapshots({ signal }), ref, o.host ? { host: o.host } : {});
      const progress = progressFor(g, 'restore');
      const started = Date.now();
      // a shared lock: prune (exclusive) must not delete packs while they are being read
      const r = await withLock(repo, 'restore', false, (lockSignal) => restore(repo, snapshot, { target: o.target, includes: o.include, overwrite: o.overwrite === true, owners: process.getuid?.() === 0, progress, signal: lockSignal }), signal).finally(() => progress.stop());
      const durationMs = Date.now() - started;
      emit(g.json, { snapshotId: id, target: o.target, files: r.files, dirs: r.dirs, bytes: r.bytes, durationMs, errors: r.errors }, () =>
        [`restored snapshot ${id.slice(0, 12)} to ${o.target}: ${r.files} files, ${r.dirs} dirs, ${formatBytes(r.bytes)} in ${(durationMs / 1000).toFixed(1)} s`, ...(r.errors.length ? [`${r.errors.length} path(s) failed (see warnings above)`] : [])].join('\n'),
      );
      if (r.errors.length > 0) process.exitCode = ExitCode.partial;
    });
}
