import type { Command } from 'commander';
import type { SnapshotId } from '../../core/ids.js';
import { backup } from '../../engine/backup.js';
import { type GlobalOptions, openRepo, withLock } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { emit, formatBytes, progressFor } from '../output.js';
import { PROGRAM } from '../version.js';

interface BackupFlags {
  exclude: string[];
  excludeFile?: string;
  oneFileSystem?: boolean;
  tag: string[];
  parent?: string;
  force?: boolean;
  source?: string;
}

/** Registers `cairn backup`. */
export function registerBackup(program: Command, globals: () => GlobalOptions, signal: AbortSignal): void {
  const collect = (v: string, prev: string[]): string[] => [...prev, v];
  program
    .command('backup')
    .argument('<paths...>', 'files and folders to back up')
    .description('back up paths into a new snapshot; unchanged files (size, mtime, ctime, inode) are not read again')
    .option('-e, --exclude <glob>', 'exclude paths matching a glob (repeatable; no slash: matches names at any depth)', collect, [])
    .option('--exclude-file <file>', 'read exclude globs from a file, one per line')
    .option('-x, --one-file-system', 'do not cross into other file systems')
    .option('--tag <tag>', 'add a tag (repeatable)', collect, [])
    .option('--parent <id>', 'compare against this snapshot instead of the latest of the same paths')
    .option('--force', 'read every file, ignoring the parent snapshot')
    .option('--source <name>', 'source name recorded in the snapshot')
    .action(async (paths: string[], o: BackupFlags) => {
      const g = globals();
      const excludes = [...o.exclude];
      if (o.excludeFile) {
        const { readFile } = await import('node:fs/promises');
        excludes.push(...(await readFile(o.excludeFile, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
      }
      const repo = await openRepo(g, { signal });
      const progress = progressFor(g, 'backup');
      // the index is read under the lock, so it cannot be changed (by prune) between the two
      const result = await withLock(repo, 'backup', false, async (lockSignal) => {
        await repo.loadIndex({ signal: lockSignal });
        return backup(repo, {
          paths,
          excludes,
          oneFileSystem: o.oneFileSystem === true,
          tags: o.tag,
          ...(o.source ? { source: { name: o.source, kind: 'folder' as const } } : {}),
          ...(o.force ? { parent: 'none' as const } : o.parent ? { parent: o.parent as SnapshotId } : {}),
          progress,
          program: PROGRAM,
          signal: lockSignal,
        });
      }, signal).finally(() => progress.stop());
      const s = result.snapshot.summary;
      const summary = {
        snapshotId: result.snapshotId,
        parent: result.parent ?? null,
        filesNew: s.filesNew,
        filesChanged: s.filesChanged,
        filesUnmodified: s.filesUnmodified,
        dirs: s.dirs,
        bytesRead: s.bytesRead,
        bytesTotal: s.bytesTotal,
        bytesAdded: s.bytesAdded,
        blobsAdded: s.blobsAdded,
        durationMs: s.durationMs,
        errors: result.errors,
      };
      emit(g.json, summary, () =>
        [
          `snapshot ${result.snapshotId.slice(0, 12)} saved${result.parent ? ` (parent ${result.parent.slice(0, 12)})` : ''}`,
          `files: ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified; ${s.dirs} dirs`,
          `read ${formatBytes(s.bytesRead)} of ${formatBytes(s.bytesTotal)}, added ${formatBytes(s.bytesAdded)} in ${(s.durationMs / 1000).toFixed(1)} s`,
          ...(result.errors.length ? [`${result.errors.length} path(s) could not be read (see warnings above); exit code 3`] : []),
        ].join('\n'),
      );
      if (result.errors.length > 0) process.exitCode = ExitCode.partial;
    });
}
