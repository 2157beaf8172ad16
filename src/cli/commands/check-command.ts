import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
import { check } from '../../engine/check.js';
import { type GlobalOptions, openRepo, withLock } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { emit } from '../output.js';

/** Registers `cairn check`. */
export function registerCheck(program: Command, globals: () => GlobalOptions, signal: AbortSignal): void {
  program
    .command('check')
    .description('verify the repository structure; with --read-data also read and authenticate the packs')
    .option('--read-data', 'read every pack')
    .option('--read-data-subset <n/t>', 'read the n-th of t subsets of the packs')
    .action(async (o: { readData?: boolean; readDataSubset?: string }) => {
      const g = globals();
      let readData: boolean | { n: number; t: number } = o.readData === true;
      if (o.readDataSubset) {
        const m = /^(\d+)\/(\d+)$/.exec(o.readDataSubset);
        if (!m) throw new CairnError('E_USAGE', `--read-data-subset ${o.readDataSubset}: expected n/t, e.g. 1/10`);
        readData = { n: Number(m[1]), t: Number(m[2]) };
      }
      const repo = await openRepo(g, { signal });
      const report = await withLock(repo, 'check', false, (lockSignal) => check(repo, { readData, signal: lockSignal }), signal);
      emit(g.json, report, () => {
        const lines = [`checked ${report.snapshots} snapshots, ${report.packs} packs, ${report.blobs} blobs${readData ? `; read ${report.packsRead} packs` : ''}`];
        for (const w of report.warnings) lines.push(`warning: ${w.message}`);
        for (const e of report.errors) {
          lines.push(`error: ${e.message}`);
          for (const a of e.affected ?? []) lines.push(`  affects snapshot ${a.snapshot.slice(0, 12)}: ${a.path}`);
        }
        lines.push(report.errors.length === 0 ? 'no errors found' : `${report.errors.length} error(s) found`);
        return lines.join('\n');
      });
      if (report.errors.length > 0) process.exitCode = ExitCode.error;
    });
}
