// End-to-end benchmark: cairn vs restic vs borg on the same generated corpus in the same run.
// Usage: npx tsx native-bench/e2e.ts [--small] [--tools cairn,restic,borg] [--no-append] [--diff] ...
import { appendFileSync, existsSync, mkdirSync, realpathSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { corpusParams, CORPUS_OPTIONS, isMain } from './lib/args.js';
import { assertOutsideRepo, DEFAULT, defaultCorpusDir, ensureCorpus, SMALL, workDir, type CorpusParams } from './lib/corpus-gen.js';
import { duBytes, GNU_TIME, tail, timed, type Command } from './lib/exec.js';
import { renderMarkdown, type Step, type ToolResult } from './lib/report.js';
import { type TreeListing, type Verification, verifyTree, walk, warm } from './lib/tree.js';
import { makeTool, parseTools, TOOL_NAMES, type Tool } from './lib/tools.js';

const RESULTS = resolve(fileURLToPath(new URL('./RESULTS.md', import.meta.url)));

const USAGE = `usage: npx tsx native-bench/e2e.ts [options]
  --small                 20k files / 300 MB corpus (default: 150k files / 3 GB)
  --files N --bytes B --seed S   corpus parameters (B accepts k/M/G suffixes)
  --corpus DIR            corpus directory (default under the work dir, reused if its corpus.json matches)
  --work DIR              work dir for corpora, repos and restores (default $CAIRN_BENCH_DIR or /tmp/cairn-bench)
  --tools LIST            comma list of ${TOOL_NAMES.join(',')} (default: all)
  --borg-compression C    borg --compression value (default zstd,3, comparable to restic's zstd)
  --diff                  also verify restores with diff -r (slower)
  --wait-idle SECONDS     before each tool, wait up to SECONDS for the 1-minute load average to drop below 0.5
  --keep                  keep repos under the work dir after the run
  --no-append             print the results only; do not append them to native-bench/RESULTS.md`;

const log = (s: string): void => console.error(`[e2e] ${s}`);

interface RunContext {
  src: string;
  listing: TreeListing;
  work: string;
  fullDiff: boolean;
  keep: boolean;
  waitIdle: number;
}

/** Wait (up to maxSeconds) until the 1-minute load average is below 0.5, so other work skews less. */
async function waitIdle(maxSeconds: number): Promise<void> {
  const t0 = performance.now();
  while ((loadavg()[0] ?? 0) >= 0.5) {
    if ((performance.now() - t0) / 1000 >= maxSeconds) {
      log(`machine still busy (load ${(loadavg()[0] ?? 0).toFixed(2)}) after ${maxSeconds} s; going on`);
      return;
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
}

function parseJsonLine(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').filter((l) => l.trim().startsWith('{'));
  for (const candidate of [stdout.trim(), ...lines.reverse()]) {
    try {
      const v: unknown = JSON.parse(candidate);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

/** A restore verifies only the snapshot restored (the rerun's): cairn's summaries must also say
 *  that the first backup read every byte of the corpus and the rerun none, every file unmodified.
 *  A first backup that recorded wrong sizes (docs/decisions.md §37) showed only as a rerun that
 *  read files again. */
function withSummaries(v: Verification, listing: TreeListing, first: Record<string, unknown> | undefined, rerun: Record<string, unknown> | undefined): Verification {
  const problems: string[] = [];
  if (first?.['bytesRead'] !== listing.bytes) problems.push(`first backup read ${String(first?.['bytesRead'])} bytes of ${listing.bytes}`);
  if (rerun?.['bytesRead'] !== 0) problems.push(`no-change backup read ${String(rerun?.['bytesRead'])} bytes`);
  if (rerun?.['filesUnmodified'] !== listing.files.size) problems.push(`no-change backup found ${String(rerun?.['filesUnmodified'])} of ${listing.files.size} files unmodified`);
  if (problems.length === 0) return { ...v, detail: `${v.detail}, summaries agree` };
  return { ok: false, detail: [...(v.ok ? [] : [v.detail]), ...problems].join('; ') };
}

async function runTool(tool: Tool, ctx: RunContext, result: ToolResult): Promise<void> {
  const home = join(ctx.work, `run-${tool.name}`);
  const repo = join(home, 'repo');
  const target = join(home, 'restore');
  const logFile = join(home, 'log.txt');
  rmSync(home, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const step = async (label: string, c: Command): Promise<{ step: Step; stdout: string }> => {
    log(`${tool.name}: ${label} ...`);
    const t = await timed(c, logFile, home);
    if (t.code !== 0) throw new Error(`${label} exited with ${t.code}:\n${tail(logFile)}`);
    log(`${tool.name}: ${label} ${t.seconds.toFixed(2)} s (cpu ${t.cpuSeconds.toFixed(1)} s), peak RSS ${(t.rssKiB / 1024).toFixed(0)} MiB`);
    return { step: { seconds: t.seconds, rssKiB: t.rssKiB, cpuSeconds: t.cpuSeconds }, stdout: t.stdout };
  };
  try {
    if (ctx.waitIdle > 0) await waitIdle(ctx.waitIdle);
    result.loadBefore = loadavg()[0];
    log(`${tool.name}: load avg ${(result.loadBefore ?? 0).toFixed(2)}; warming page cache (${warm(ctx.src, ctx.listing).toFixed(1)} s)`);
    result.init = (await step('init', tool.init(repo, home))).step;
    const first = await step('first backup', tool.backup(repo, home, ctx.src, 1));
    result.first = first.step;
    const rerun = await step('no-change backup', tool.backup(repo, home, ctx.src, 2));
    result.rerun = rerun.step;
    if (tool.name === 'cairn') {
      result.firstJson = parseJsonLine(first.stdout);
      result.rerunJson = parseJsonLine(rerun.stdout);
      if (!result.rerunJson) log('cairn: backup --json printed no JSON object');
    }
    result.repoBytes = duBytes(repo);
    log(`${tool.name}: repo ${(result.repoBytes / 2 ** 20).toFixed(1)} MiB`);
    result.restore = (await step('restore', tool.restore(repo, home, target))).step;
    const restored = tool.restoredPath(target, ctx.src);
    log(`${tool.name}: verifying ${restored}`);
    result.verify = verifyTree(ctx.src, ctx.listing, restored, ctx.fullDiff);
    if (tool.name === 'cairn') result.verify = withSummaries(result.verify, ctx.listing, result.firstJson, result.rerunJson);
    log(`${tool.name}: verify ${result.verify.ok ? 'OK' : 'FAILED'}: ${result.verify.detail}`);
  } catch (e) {
    result.error = (e as Error).message.split('\n')[0] ?? 'error';
    log(`${tool.name}: FAILED: ${(e as Error).message}`);
  }
  // the restored tree stays until every tool has run (see main)
}

function label(p: CorpusParams): string {
  const same = (q: CorpusParams): boolean => q.files === p.files && q.bytes === p.bytes && q.seed === p.seed;
  const kind = same(SMALL) ? 'small corpus' : same(DEFAULT) ? 'full corpus' : 'custom corpus';
  return `${kind} (${p.files} files, ${(p.bytes / 1e6).toFixed(0)} MB target, seed ${p.seed})`;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...CORPUS_OPTIONS,
      corpus: { type: 'string' },
      work: { type: 'string' },
      tools: { type: 'string' },
      'borg-compression': { type: 'string' },
      diff: { type: 'boolean' },
      keep: { type: 'boolean' },
      'wait-idle': { type: 'string' },
      'no-append': { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is missing (apt-get install time)`);
  if (values.work) process.env['CAIRN_BENCH_DIR'] = resolve(values.work);
  const work = workDir();
  assertOutsideRepo(work);
  mkdirSync(work, { recursive: true });
  const params = corpusParams(values);
  const names = values.tools ? parseTools(values.tools) : [...TOOL_NAMES];
  const opts = { borgCompression: values['borg-compression'] ?? 'zstd,3' };
  const corpus = ensureCorpus(params, values.corpus ?? values.out ?? defaultCorpusDir(params), log);
  const src = realpathSync(corpus.tree);
  const listing = walk(src);
  if (listing.bytes !== corpus.manifest.bytes || listing.files.size !== corpus.manifest.files) {
    throw new Error(`corpus on disk (${listing.files.size} files, ${listing.bytes} B) does not match corpus.json; delete ${corpus.dir}`);
  }
  const warmSeconds = warm(src, listing);
  log(`corpus ${src}: ${listing.files.size} files, ${(listing.bytes / 1e6).toFixed(0)} MB, first read ${warmSeconds.toFixed(1)} s`);
  const ctx: RunContext = { src, listing, work, fullDiff: values.diff ?? false, keep: values.keep ?? false, waitIdle: Number(values['wait-idle'] ?? 0) };
  if (!Number.isFinite(ctx.waitIdle) || ctx.waitIdle < 0) throw new Error('--wait-idle wants a number of seconds');
  const results: ToolResult[] = [];
  for (const name of names) {
    const tool = makeTool(name, opts);
    const why = tool.unavailable();
    const result: ToolResult = { tool: name, version: why ? 'n/a' : tool.version(), settings: tool.settings() };
    results.push(result);
    if (why) {
      result.skipped = why;
      log(`${name}: SKIPPED: ${why}`);
      continue;
    }
    await runTool(tool, ctx, result);
  }
  // Restores are removed only now. ext4 makes the inode allocation of a restore that starts soon
  // after 150k files were deleted far slower (recently_deleted(): ~38% of a restore's cpu in perf,
  // 25 s -> 42-46 s here): deleting one tool's restore before the next tool restores would slow
  // every tool but the first.
  for (const name of names) {
    const home = join(work, `run-${name}`);
    rmSync(join(home, 'restore'), { recursive: true, force: true });
    if (!ctx.keep) rmSync(home, { recursive: true, force: true });
  }
  const md = renderMarkdown({ date: new Date().toISOString(), label: label(params), manifest: corpus.manifest, warmSeconds, workDir: work, fullDiff: ctx.fullDiff }, results);
  console.log(md);
  if (!values['no-append']) {
    appendFileSync(RESULTS, `\n${md}`);
    log(`appended to ${RESULTS}`);
  }
  if (results.some((r) => r.error || (r.verify && !r.verify.ok))) process.exitCode = 1;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`[e2e] ${(e as Error).message}`);
    process.exit(2);
  });
}
