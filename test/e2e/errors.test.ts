// End to end through the real CLI: each way a command can go wrong ends with the documented exit
// code and a message that says what happened, never a stack trace; damage is found and traced to
// the snapshots and files it affects; what can be saved or restored still is.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BackupSummary,
  type CliResult,
  type RunOptions,
  describeRun,
  killStrayCairns,
  listPacks,
  listRepoFiles,
  makeTempDir,
  parseJson,
  parseJsonLines,
  removeTempDir,
  repoEnv,
  CLI_PATH,
  runCairn,
  startCairn,
} from './helpers/cli.js';
import { MiB, buildTree, randomBuffer } from './helpers/tree.js';

const TIMEOUT_MS = 120_000;
const STACK_FRAME = '    at ';
const IS_ROOT = process.getuid?.() === 0;
/** As root, permissions do not stop reads: the unreadable-file case runs the CLI as nobody. */
const NOBODY = 65534;
const CAN_DROP_ROOT = IS_ROOT && spawnSync(process.execPath, ['-e', ''], { uid: NOBODY, gid: NOBODY }).status === 0;

let root: string;

beforeAll(async () => {
  root = await makeTempDir('errors');
});

afterEach(() => killStrayCairns());

afterAll(async () => {
  if (root) await removeTempDir(root);
});

/** A new repository with a small source tree, and a runner bound to it. */
async function freshRepo(name: string, runAs: Pick<RunOptions, 'uid' | 'gid'> = {}): Promise<{ repo: string; src: string; cairn: (...args: string[]) => Promise<CliResult> }> {
  const repo = path.join(root, name, 'repo');
  const src = path.join(root, name, 'src');
  buildTree(src, [
    { kind: 'file', path: 'a.txt', data: 'a\n' },
    { kind: 'file', path: 'sub/b.txt', data: 'b\n' },
  ]);
  if (runAs.uid !== undefined) chownTree(path.join(root, name), runAs.uid, runAs.gid ?? runAs.uid);
  const cairn = (...args: string[]): Promise<CliResult> => runCairn(args, { env: repoEnv(repo), ...runAs });
  const init = await cairn('init');
  expect(init.code, describeRun(init)).toBe(0);
  return { repo, src, cairn };
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid, gid);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

describe('repository access errors', () => {
  let repo: string;
  let src: string;
  let cairn: (...args: string[]) => Promise<CliResult>;

  beforeAll(async () => {
    ({ repo, src, cairn } = await freshRepo('access'));
  }, TIMEOUT_MS);

  it('a wrong password exits 12 with a clear message and no stack trace', async () => {
    const r = await runCairn(['snapshots'], { env: repoEnv(repo, 'not the password') });
    expect(r.code, describeRun(r)).toBe(12);
    expect(r.stderr).toMatch(/^error: wrong password/);
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(r.stdout).toBe('');
  });

  it('a missing repository exits 10 and says where it looked', async () => {
    const missing = path.join(root, 'no-such-repo');
    const r = await runCairn(['snapshots'], { env: repoEnv(missing) });
    expect(r.code, describeRun(r)).toBe(10);
    expect(r.stderr).toContain(`no repository at local:${missing}`);
    expect(r.stderr).toContain('cairn init');
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('init on an existing repository fails and says it exists', async () => {
    const keysBefore = listRepoFiles(repo, 'keys');
    const r = await cairn('init');
    expect(r.code, describeRun(r)).not.toBe(0);
    expect(r.stderr).toContain('already exists');
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(listRepoFiles(repo, 'keys')).toEqual(keysBefore);
  });

  it('no password exits 2 with a hint', async () => {
    const r = await runCairn(['snapshots'], { env: { CAIRN_REPO: repo } });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain('no password');
    expect(r.stderr).toMatch(/hint: .*CAIRN_PASSWORD/);
    expect(r.stderr).not.toContain(STACK_FRAME);
  });

  it('a backup path that does not exist fails with a clear message and saves nothing', async () => {
    const missing = path.join(src, 'not-here');
    const r = await cairn('backup', missing);
    expect(r.code, describeRun(r)).not.toBe(0);
    expect(r.stderr).toContain(`cannot back up ${missing}`);
    expect(r.stderr).toContain('ENOENT');
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(listRepoFiles(repo, 'snapshots')).toEqual([]);
  });

  it('a lock held by a live process makes backup exit 11; once that process is gone the lock is cleared', async () => {
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      expect(holder.pid).toBeGreaterThan(0);
      const lockName = randomBytes(32).toString('hex');
      const lock = { exclusive: true, host: os.hostname(), pid: holder.pid, username: 'x', time: new Date().toISOString(), purpose: 'prune' };
      fs.mkdirSync(path.join(repo, 'locks'), { recursive: true });
      fs.writeFileSync(path.join(repo, 'locks', lockName), JSON.stringify(lock));

      const locked = await cairn('backup', src);
      expect(locked.code, describeRun(locked)).toBe(11);
      expect(locked.stderr).toContain(`locked exclusively by prune (pid ${holder.pid}`);
      expect(locked.stderr).toMatch(/hint: .*cairn unlock/);
      expect(locked.stderr).not.toContain(STACK_FRAME);
      expect(listRepoFiles(repo, 'locks')).toEqual([lockName]);
      expect(listRepoFiles(repo, 'snapshots')).toEqual([]);

      holder.kill('SIGKILL');
      await exited(holder);
      const r = await cairn('backup', src, '--json');
      expect(r.code, describeRun(r)).toBe(0);
      expect(parseJson<BackupSummary>(r).filesNew).toBe(2);
      expect(listRepoFiles(repo, 'locks')).toEqual([]);
      expect(listRepoFiles(repo, 'snapshots')).toHaveLength(1);
    } finally {
      holder.kill('SIGKILL');
    }
  }, TIMEOUT_MS);

  // BUG (src/cli/main.ts): nothing handles EPIPE on process.stdout, so a reader that stops
  // early (`cairn ls latest | head`) makes Node die of an unhandled 'error' event with a stack
  // trace. Marked it.fails until main.ts ends quietly on EPIPE.
  it('a closed stdout pipe (cairn ls | head) ends the command quietly', async () => {
    buildTree(path.join(src, 'many'), Array.from({ length: 3000 }, (_, i) => ({ kind: 'file' as const, path: `a-rather-long-file-name-to-fill-the-pipe-${String(i).padStart(5, '0')}` })));
    const b = await cairn('backup', src);
    expect(b.code, describeRun(b)).toBe(0);
    const ls = startCairn(['ls', 'latest'], { env: repoEnv(repo) });
    ls.child.stdout!.once('data', () => ls.child.stdout!.destroy());
    const r = await ls.done;
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(r.stderr).not.toContain('EPIPE');
  }, TIMEOUT_MS);
});

describe('a repository that refuses a write', () => {
  it('a pack write failing half-way (a file-size limit) fails the backup with a hint, leaves no staged file, and the next backup succeeds', async () => {
    const { repo, src, cairn } = await freshRepo('refused-write');
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(30 * MiB));
    // the shell ignores SIGXFSZ, so past 8 MiB a write fails with EFBIG as a full disk would
    // fail with ENOSPC: in the middle of a staged pack
    const limited = spawnSync('bash', ['-c', 'trap "" XFSZ; ulimit -f 8192; exec "$0" "$@"', process.execPath, CLI_PATH, 'backup', src], {
      env: { ...process.env, ...repoEnv(repo) },
      encoding: 'utf8',
    });
    expect(limited.status, limited.stderr).toBe(1);
    expect(limited.stderr).toContain(`file too large writing ${repo}/.tmp-`);
    expect(limited.stderr).toContain('hint: raise the file-size limit (ulimit -f)');
    expect(limited.stderr).not.toContain(STACK_FRAME);
    expect(fs.readdirSync(repo).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(listRepoFiles(repo, 'snapshots')).toEqual([]);
    const check = await cairn('check');
    expect(check.code, describeRun(check)).toBe(0);
    const again = await cairn('backup', src, '--json');
    expect(again.code, describeRun(again)).toBe(0);
    expect(parseJson<BackupSummary>(again).filesNew).toBe(3);
    const read = await cairn('check', '--read-data');
    expect(read.code, describeRun(read)).toBe(0);
  }, TIMEOUT_MS);
});

describe('unreadable entries', () => {
  const runAs = CAN_DROP_ROOT ? { uid: NOBODY, gid: NOBODY } : {};

  it.skipIf(IS_ROOT && !CAN_DROP_ROOT)('a file and a folder that cannot be read: backup exits 3, names them, and saves the rest', async () => {
    if (runAs.uid !== undefined) fs.chmodSync(root, 0o755); // let nobody reach its folder
    const { repo, src, cairn } = await freshRepo('unreadable', runAs);
    buildTree(src, [
      { kind: 'file', path: 'secret.txt', data: 'secret\n' },
      { kind: 'file', path: 'locked/inside.txt', data: 'inside\n' },
    ]);
    if (runAs.uid !== undefined) chownTree(src, runAs.uid, runAs.gid);
    fs.chmodSync(path.join(src, 'secret.txt'), 0o000);
    fs.chmodSync(path.join(src, 'locked'), 0o000);

    const r = await cairn('backup', src);
    expect(r.code, describeRun(r)).toBe(3);
    expect(r.stderr).toContain(`warning: ${path.join(src, 'secret.txt')}: EACCES`);
    expect(r.stderr).toContain(`warning: ${path.join(src, 'locked')}: EACCES`);
    expect(r.stderr).not.toContain(STACK_FRAME);
    expect(r.stdout).toContain('exit code 3');

    const ls = await cairn('ls', 'latest', src, '--json');
    expect(ls.code, describeRun(ls)).toBe(0);
    const paths = parseJsonLines<{ path: string }>(ls).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining([path.join(src, 'a.txt'), path.join(src, 'sub/b.txt')]));
    expect(paths).not.toContain(path.join(src, 'secret.txt'));
    expect(paths).not.toContain(path.join(src, 'locked/inside.txt'));

    const target = path.join(path.dirname(repo), 'restore');
    const restore = await cairn('restore', 'latest', '--target', target);
    expect(restore.code, describeRun(restore)).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'a.txt'), 'utf8')).toBe('a\n');
    expect(fs.readFileSync(path.join(target, src, 'sub/b.txt'), 'utf8')).toBe('b\n');
  }, TIMEOUT_MS);
});

describe('a damaged pack', () => {
  let repo: string;
  let src: string;
  let cairn: (...args: string[]) => Promise<CliResult>;
  const snaps: string[] = [];

  beforeAll(async () => {
    ({ repo, src, cairn } = await freshRepo('damaged'));
    // big.bin alone in the first backup: its chunks fill the largest packs (seal workers build
    // one pack each, so they may be split across two), and the largest one is damaged
    buildTree(src, [{ kind: 'file', path: 'big.bin', data: randomBuffer(3 * MiB) }]);
    const first = await cairn('backup', src, '--json');
    expect(first.code, describeRun(first)).toBe(0);
    snaps.push(parseJson<BackupSummary>(first).snapshotId);
    buildTree(src, [{ kind: 'file', path: 'mid.bin', data: randomBuffer(100 * 1024) }]);
    const second = await cairn('backup', src, '--json');
    expect(second.code, describeRun(second)).toBe(0);
    snaps.push(parseJson<BackupSummary>(second).snapshotId);

    const largest = listPacks(repo).sort((a, b) => b.sizeBytes - a.sizeBytes)[0]!;
    expect(largest.sizeBytes).toBeGreaterThan(MiB);
    const file = path.join(repo, 'data', largest.name.slice(0, 2), largest.name);
    const fd = fs.openSync(file, 'r+');
    try {
      const at = Math.floor(largest.sizeBytes / 2);
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0]! ^= 0xff;
      fs.writeSync(fd, b, 0, 1, at);
    } finally {
      fs.closeSync(fd);
    }
  }, TIMEOUT_MS);

  it('check --read-data fails and names the snapshots and the file it affects', async () => {
    const r = await cairn('check', '--read-data');
    expect(r.code, describeRun(r)).not.toBe(0);
    const out = r.stdout + r.stderr;
    const bigPath = path.join(src, 'big.bin');
    for (const id of snaps) expect(out).toContain(`affects snapshot ${id.slice(0, 12)}: ${bigPath}`);
    expect(out).not.toContain(path.join(src, 'a.txt'));
    expect(out).not.toContain(path.join(src, 'mid.bin'));
    expect(out).not.toContain(STACK_FRAME);
  }, TIMEOUT_MS);

  it('restore reports the damaged file, exits nonzero, and restores the others', async () => {
    const target = path.join(root, 'damaged', 'restore');
    const r = await cairn('restore', snaps[1]!, '--target', target);
    expect(r.code, describeRun(r)).not.toBe(0);
    expect(r.code).not.toBe(null);
    expect(r.stderr).toContain(`warning: ${path.join(src, 'big.bin')}: `);
    expect(r.stderr).not.toContain(STACK_FRAME);
    const restored = path.join(target, src);
    expect(fs.readFileSync(path.join(restored, 'a.txt'), 'utf8')).toBe('a\n');
    expect(fs.readFileSync(path.join(restored, 'sub/b.txt'), 'utf8')).toBe('b\n');
    expect(fs.readFileSync(path.join(restored, 'mid.bin')).equals(fs.readFileSync(path.join(src, 'mid.bin')))).toBe(true);
  }, TIMEOUT_MS);
});
