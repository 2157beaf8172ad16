import type { Command } from 'commander';
import path from 'node:path';
import { CairnError } from '../../core/errors.js';
import { diffTrees } from '../../engine/diff.js';
import { displayPath, fromUserPath } from '../../engine/progress.js';
import { TreeLoader } from '../../engine/tree-loader.js';
import { walkTree } from '../../engine/tree-walk.js';
import { resolveSnapshot } from '../../repo/snapshots.js';
import { type GlobalOptions, openRepo } from '../context.js';
import { emit, formatBytes } from '../output.js';

/** Registers snapshots, ls and diff. */
export function registerSnapshotCommands(program: Command, globals: () => GlobalOptions, signal: AbortSignal): void {
  program
    .command('snapshots')
    .description('list snapshots, oldest first')
    .option('--host <host>', 'only of this host')
    .option('--tag <tag>', 'only with this tag')
    .action(async (o: { host?: string; tag?: string }) => {
      const g = globals();
      const repo = await openRepo(g, { signal });
      const all = (await repo.listSnapshots({ signal })).filter((e) => (!o.host || e.snapshot.host === o.host) && (!o.tag || e.snapshot.tags.includes(o.tag)));
      emit(g.json, all.map((e) => ({ id: e.id, ...e.snapshot })), () =>
        all.length === 0
          ? 'no snapshots'
          : all.map((e) => `${e.id.slice(0, 12)}  ${e.snapshot.time}  ${e.snapshot.host}  ${formatBytes(e.snapshot.summary.bytesTotal).padStart(10)}  ${e.snapshot.paths.join(', ')}${e.snapshot.tags.length ? `  [${e.snapshot.tags.join(',')}]` : ''}`).join('\n'),
      );
    });

  program
    .command('ls')
    .argument('<snapshot>', 'snapshot id, prefix, or "latest"')
    .argument('[path]', 'list only under this absolute path')
    .option('-l, --long', 'show mode, size and time')
    .description('list the files of a snapshot')
    .action(async (ref: string, under: string | undefined, o: { long?: boolean }) => {
      const g = globals();
      const repo = await openRepo(g, { index: true, signal });
      const { id, snapshot } = resolveSnapshot(await repo.listSnapshots({ signal }), ref);
      const prefix = under ? fromUserPath(path.resolve('/', under)).replace(/\/+$/, '') : '';
      let found = prefix === '';
      for await (const { path: p, node } of walkTree(new TreeLoader(repo.reader), snapshot.tree, '', { signal })) {
        if (prefix && p !== prefix && !p.startsWith(prefix + '/')) continue;
        found = true;
        const text = displayPath(p);
        const shown = quoteIfNeeded(text);
        if (g.json) {
          const raw = Buffer.from(p, 'latin1');
          const exact = Buffer.from(text, 'utf8').equals(raw);
          process.stdout.write(JSON.stringify({ path: text, ...(exact ? {} : { pathRaw: raw.toString('base64') }), snapshot: id, ...node, name: undefined, nameRaw: undefined, content: undefined, chunks: node.content?.length ?? 0 }) + '\n');
        }
        else if (o.long) process.stdout.write(`${modeString(node.type, node.mode)} ${String(node.user ?? node.uid).padEnd(8)} ${String(node.group ?? node.gid).padEnd(8)} ${String(node.size).padStart(12)} ${new Date(Number(BigInt(node.mtimeNs) / 1000000n)).toISOString()} ${shown}${node.linkTarget !== undefined ? ` -> ${node.linkTarget}` : ''}\n`);
        else process.stdout.write(shown + '\n');
      }
      if (!found) throw new CairnError('E_PATH_NOT_FOUND', `${under} is not in snapshot ${id.slice(0, 12)}`);
    });

  program
    .command('diff')
    .argument('<a>', 'first snapshot')
    .argument('<b>', 'second snapshot')
    .description('show what changed between two snapshots (+ added, - removed, M content, U metadata)')
    .action(async (a: string, b: string) => {
      const g = globals();
      const repo = await openRepo(g, { index: true, signal });
      const all = await repo.listSnapshots({ signal });
      const sa = resolveSnapshot(all, a);
      const sb = resolveSnapshot(all, b);
      const counts = { '+': 0, '-': 0, M: 0, U: 0 };
      for await (const d of diffTrees(repo, sa.snapshot.tree, sb.snapshot.tree, { signal })) {
        counts[d.change]++;
        process.stdout.write(g.json ? JSON.stringify(d) + '\n' : `${d.change}  ${d.path}${d.type === 'dir' ? '/' : ''}\n`);
      }
      if (!g.json) process.stdout.write(`\n${counts['+']} added, ${counts['-']} removed, ${counts.M} modified, ${counts.U} metadata only\n`);
    });
}

/** A path as ls prints it: as is, or JSON-quoted when it holds a control character (a newline
 *  in a name would otherwise read as two entries) or bytes that are not UTF-8 (shown as U+FFFD). */
function quoteIfNeeded(p: string): string {
  return /[\u0000-\u001f\u007f\ufffd]/.test(p) ? JSON.stringify(p) : p;
}

function modeString(type: string, mode: number): string {
  const t = { dir: 'd', symlink: 'l', fifo: 'p', socket: 's', blockdev: 'b', chardev: 'c' }[type] ?? '-';
  const rwx = (m: number): string => `${m & 4 ? 'r' : '-'}${m & 2 ? 'w' : '-'}${m & 1 ? 'x' : '-'}`;
  return t + rwx(mode >> 6) + rwx(mode >> 3) + rwx(mode);
}
