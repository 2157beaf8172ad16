// Crash tests with the real CLI: a backup killed with SIGKILL at chosen moments (first pack
// written, first index written, most packs written) leaves a repository that checks clean, and
// the next backup completes, reuses the packs already uploaded, and restores exactly. SIGINT
// stops a backup promptly and cleanly.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BackupSummary,
  type CliResult,
  type RunningCli,
  describeRun,
  killStrayCairns,
  listPacks,
  listRepoFiles,
  makeTempDir,
  parseJson,
  removeTempDir,
  repoEnv,
  runCairn,
  startCairn,
  waitFor,
} from './helpers/cli.js';
import { MiB, type ScannedTree, buildTree, compareTrees, randomBuffer, scanTree } from './helpers/tree.js';

const TIMEOUT_MS = 120_000;
const FILES = 40;
/** 40 × 7 MiB = 280 MiB of random data: about 17 packs of 16 MiB (the default pack target), so
 *  the backup takes seconds, and more than the 16 packs after which the writer indexes what it
 *  has uploaded, so an index file appears while the backup is still running. */
const FILE_BYTES = 7 * MiB;
const TOTAL_BYTES = FILES * FILE_BYTES;
const PACK_TARGET_BYTES = 16 * MiB;
const EXPECTED_PACKS = Math.floor(TOTAL_BYTES / PACK_TARGET_BYTES);
/** Room for tree blobs and per-blob sealing overhead in bytesAdded. */
const SLACK_BYTES = 2 * MiB;

interface CheckReport {
  readonly errors: readonly { kind: string; message: string }[];
  readonly warnings: readonly { kind: string; message: string }[];
  readonly packsRead: number;
}

let root: string;
let src: string;
let source: ScannedTree;

beforeAll(async () => {
  root = await makeTempDir('crash');
  src = path.join(root, 'src');
  buildTree(src, Array.from({ length: FILES }, (_, i) => ({ kind: 'file' as const, path: `f${String(i).padStart(2, '0')}.bin`, data: randomBuffer(FILE_BYTES) })));
  source = await scanTree(src);
}, TIMEOUT_MS);

afterEach(() => killStrayCairns());

afterAll(async () => {
  killStrayCairns();
  if (root) await removeTempDir(root);
});

/** A new repository under `name`, and a runner bound to it. */
async function freshRepo(name: string): Promise<{ dir: string; repo: string; cairn: (...args: string[]) => Promise<CliResult> }> {
  const dir = path.join(root, name);
  const repo = path.join(dir, 'repo');
  const cairn = (...args: string[]): Promise<CliResult> => runCairn(args, { env: repoEnv(repo) });
  const init = await cairn('init');
  expect(init.code, describeRun(init)).toBe(0);
  return { dir, repo, cairn };
}

const packBytes = (packs: readonly { sizeBytes: number }[]): number => packs.reduce((a, p) => a + p.sizeBytes, 0);

/** After an interrupted backup: check passes (unindexed packs are only warnings), the next backup
 *  completes without uploading again what was uploaded, restores exactly, and reads back clean. */
async function expectRecovery(dir: string, repo: string, cairn: (...args: string[]) => Promise<CliResult>, packsBefore: readonly { sizeBytes: number }[]): Promise<void> {
  const check = await cairn('check', '--json');
  expect(check.code, describeRun(check)).toBe(0);
  const report = parseJson<CheckReport>(check);
  expect(report.errors).toEqual([]);
  for (const w of report.warnings) expect(w.kind).toBe('unindexed-pack');

  const b = await cairn('backup', src, '--json');
  expect(b.code, describeRun(b)).toBe(0);
  const s = parseJson<BackupSummary>(b);
  expect(s).toMatchObject({ filesNew: FILES, bytesRead: TOTAL_BYTES, errors: [] });
  expect(s.bytesAdded).toBeLessThanOrEqual(TOTAL_BYTES - packBytes(packsBefore) + SLACK_BYTES);
  expect(listRepoFiles(repo, 'locks')).toEqual([]);

  const target = path.join(dir, 'restore');
  const r = await cairn('restore', s.snapshotId, '--target', target);
  expect(r.code, describeRun(r)).toBe(0);
  expect(compareTrees(source, await scanTree(path.join(target, src)))).toEqual([]);

  const full = await cairn('check', '--read-data', '--json');
  expect(full.code, describeRun(full)).toBe(0);
  const fullReport = parseJson<CheckReport>(full);
  expect(fullReport.errors).toEqual([]);
  expect(fullReport.warnings).toEqual([]); // the next backup adopted every orphaned pack
  expect(fullReport.packsRead).toBe(listPacks(repo).length);
}

/** When to kill the backup: resolves once that moment has been observed on disk. */
type Moment = (repo: string, cli: RunningCli) => Promise<unknown>;

const atLeastPacks = (n: number): Moment => (repo, cli) => waitFor(`${n} packs`, () => (listPacks(repo).length >= n ? true : undefined), cli);

const moments: { label: string; name: string; moment: Moment }[] = [
  { label: 'as soon as the first pack is written', name: 'first-pack', moment: atLeastPacks(1) },
  {
    label: 'as soon as the first index file is written',
    name: 'first-index',
    moment: (repo, cli) => waitFor('the first index file', () => (listRepoFiles(repo, 'index').length >= 1 ? true : undefined), cli),
  },
  { label: `right before the end (80% of the ~${EXPECTED_PACKS} packs written)`, name: 'most-packs', moment: atLeastPacks(Math.ceil(EXPECTED_PACKS * 0.8)) },
];

describe('a backup killed with SIGKILL', () => {
  it.each(moments.map((m) => [m.label, m.name, m.moment] as const))('%s: the repository checks clean and the next backup reuses what was uploaded', async (_label, name, moment) => {
    const { dir, repo, cairn } = await freshRepo(name);
    const cli = startCairn(['backup', src, '--json'], { env: repoEnv(repo) });
    await moment(repo, cli);
    const packsAtKill = listPacks(repo);
    cli.child.kill('SIGKILL');
    const killed = await cli.done;
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    expect(packsAtKill.length).toBeGreaterThanOrEqual(1);
    expect(listRepoFiles(repo, 'snapshots')).toEqual([]);
    expect(listRepoFiles(repo, 'locks')).toHaveLength(1); // left behind: the next run must clear it

    await expectRecovery(dir, repo, cairn, packsAtKill);
    await removeTempDir(dir);
  }, TIMEOUT_MS);
});

describe('a backup interrupted with SIGINT', () => {
  it('exits with 130 within seconds, releases its lock, and the next backup completes', async () => {
    const { dir, repo, cairn } = await freshRepo('sigint');
    const cli = startCairn(['backup', src], { env: repoEnv(repo) });
    await waitFor('the first pack', () => (listPacks(repo).length >= 1 ? true : undefined), cli);
    const packsAtSignal = listPacks(repo);
    const sentAt = performance.now();
    cli.child.kill('SIGINT');
    const r = await cli.done;
    const tookMs = performance.now() - sentAt;
    expect(r.code, describeRun(r)).toBe(130);
    expect(tookMs).toBeLessThan(5_000);
    expect(r.stderr).toContain('interrupted');
    expect(r.stderr).not.toContain('    at ');
    expect(listRepoFiles(repo, 'locks')).toEqual([]);
    expect(listRepoFiles(repo, 'snapshots')).toEqual([]);

    const check = await cairn('check', '--json');
    expect(check.code, describeRun(check)).toBe(0);
    expect(parseJson<CheckReport>(check).errors).toEqual([]);
    const b = await cairn('backup', src, '--json');
    expect(b.code, describeRun(b)).toBe(0);
    const s = parseJson<BackupSummary>(b);
    expect(s).toMatchObject({ filesNew: FILES, errors: [] });
    expect(s.bytesAdded).toBeLessThanOrEqual(TOTAL_BYTES - packBytes(packsAtSignal) + SLACK_BYTES);
    expect(listRepoFiles(repo, 'snapshots')).toEqual([s.snapshotId]);
    await removeTempDir(dir);
  }, TIMEOUT_MS);
});
