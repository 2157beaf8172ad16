/**
 * Helpers for end-to-end tests of the real `cairn` CLI: spawn it as a child process, make and
 * remove temp folders, look at a repository's files, and wait for a condition on disk.
 * The CLI is the built one (dist/cli/main.js): `npm test` builds it first; run `npm run build`
 * before `npx vitest run test/e2e` after changing src/. Trees are built and compared by tree.ts.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point. */
export const CLI_PATH = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** The password every e2e repository is created with. */
export const PASSWORD = 'correct horse battery staple';

/** How a CLI run ended, with what it printed. */
export interface CliResult {
  /** The exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of a CLI run. */
export interface RunOptions {
  /** Variables added to the environment (undefined removes one). CAIRN_* variables of the test
   *  process are never inherited. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Run as this user and group (needs root). */
  readonly uid?: number;
  readonly gid?: number;
}

/** A CLI process that is still running, and the promise of its end. */
export interface RunningCli {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
  /** True once the process has exited. */
  exited(): boolean;
  /** What it has written to stderr so far. */
  stderrSoFar(): string;
  stdoutSoFar(): string;
}

const running = new Set<ChildProcess>();

function childEnv(extra: RunOptions['env']): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_')) env[k] = v;
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `cairn args...` and returns at once. */
export function startCairn(args: readonly string[], opts: RunOptions = {}): RunningCli {
  if (!fs.existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: opts.cwd ?? os.tmpdir(),
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  running.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  let hasExited = false;
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      hasExited = true;
      running.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  return { child, done, exited: () => hasExited, stderrSoFar: () => Buffer.concat(err).toString('utf8'), stdoutSoFar: () => Buffer.concat(out).toString('utf8') };
}

/** Runs `cairn args...` to its end. */
export function runCairn(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  return startCairn(args, opts).done;
}

/** SIGKILLs every CLI process a test left running (for afterEach/afterAll). */
export function killStrayCairns(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** The environment that points the CLI at `repo` with the e2e password. */
export function repoEnv(repo: string, password: string = PASSWORD): Record<string, string> {
  return { CAIRN_REPO: repo, CAIRN_PASSWORD: password };
}

/** Parses the stdout of a `--json` run, failing with what the CLI printed when it is not JSON. */
export function parseJson<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`cairn printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** Parses one JSON object per line (ls --json, diff --json). */
export function parseJsonLines<T>(r: CliResult): T[] {
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
}

/** A result's exit code and output, for assertion messages. */
export function describeRun(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** The summary `backup --json` prints. */
export interface BackupSummary {
  readonly snapshotId: string;
  readonly parent: string | null;
  readonly filesNew: number;
  readonly filesChanged: number;
  readonly filesUnmodified: number;
  readonly dirs: number;
  readonly bytesRead: number;
  readonly bytesTotal: number;
  readonly bytesAdded: number;
  readonly blobsAdded: number;
  readonly durationMs: number;
  readonly errors: readonly { path: string; message: string }[];
}

/** A new empty folder under the OS temp folder. */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `cairn-e2e-${prefix}-`));
}

/** Removes a temp folder and everything in it, even folders whose permissions were taken away. */
export async function removeTempDir(dir: string): Promise<void> {
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    fs.chmodSync(p, 0o700);
    for (const name of fs.readdirSync(p)) walk(path.join(p, name));
  };
  walk(dir);
  await rm(dir, { recursive: true, force: true });
}

/** True when a program is on the PATH. */
export function hasProgram(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Lists the packs under <repo>/data: complete ones only (temp files start with '.'). */
export function listPacks(repo: string): { name: string; sizeBytes: number }[] {
  const data = path.join(repo, 'data');
  const out: { name: string; sizeBytes: number }[] = [];
  let dirs: string[];
  try {
    dirs = fs.readdirSync(data);
  } catch {
    return out;
  }
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(data, d));
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        out.push({ name, sizeBytes: fs.statSync(path.join(data, d, name)).size });
      } catch {
        // renamed away between readdir and stat: not a complete pack
      }
    }
  }
  return out;
}

/** Names of the complete files in <repo>/<kind> (index, snapshots, locks, keys). */
export function listRepoFiles(repo: string, kind: 'index' | 'snapshots' | 'locks' | 'keys'): string[] {
  try {
    return fs.readdirSync(path.join(repo, kind)).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** Polls `probe` every few milliseconds until it returns a value, and returns it. Rejects when
 *  `cli` exits first (the moment to act on has passed) or after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, cli?: RunningCli, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (cli?.exited()) throw new Error(`cairn exited before ${what}; stderr: ${cli.stderrSoFar()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(2);
  }
}
