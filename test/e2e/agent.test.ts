// The real agent process: first start creates the key file and repository and backs up at once;
// SIGTERM stops it within the deadline, also in the middle of a backup, leaving a repository that
// checks clean; a restart reuses key and repository and reads nothing unchanged; a config with
// mistakes is refused with every one of them and exit code 2.
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, listPacks, makeTempDir, removeTempDir, runCairn, startCairn, waitFor } from './helpers/cli.js';
import { MiB, randomBuffer } from './helpers/tree.js';

const TIMEOUT_MS = 120_000;
const DEADLINE_MS = 10_000;

let root: string;
let src: string;
let repo: string;
let keyFile: string;
let configFile: string;

interface LogLine {
  level: number;
  msg: string;
  bytesRead?: number;
  filesUnmodified?: number;
  keyFile?: string;
}
const logLines = (stdout: string): LogLine[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
/** Snapshots committed (a put in progress shows as a .tmp- file, which is not one yet). */
const snapshotCount = (): number => (fs.existsSync(path.join(repo, 'snapshots')) ? fs.readdirSync(path.join(repo, 'snapshots')).filter((n) => !n.startsWith('.')).length : 0);

beforeAll(async () => {
  root = await makeTempDir('agent');
  src = path.join(root, 'src');
  repo = path.join(root, 'repo');
  keyFile = path.join(root, 'secrets', 'agent.key');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, 'docs', `f${i}.txt`), `document ${i}\n`.repeat(i + 1));
  fs.mkdirSync(path.dirname(keyFile));
  configFile = path.join(root, 'cairn.yaml');
  fs.writeFileSync(configFile, [
    'agent: {stateDir: state}',
    `repository: {path: repo, keyFile: secrets/agent.key}`,
    'sources:',
    '  - {name: docs, kind: folder, paths: [src], schedule: ["0 0 1 1 *"]}',
  ].join('\n') + '\n');
});
afterAll(async () => {
  await removeTempDir(root);
});

describe('cairn agent', () => {
  it('on first start creates a 0600 key file and the repository, backs up at once, and stops on SIGTERM', async () => {
    const agent = startCairn(['agent', '--config', configFile]);
    await waitFor('the first snapshot', () => (snapshotCount() > 0 ? true : undefined), agent);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const t = Date.now();
    agent.child.kill('SIGTERM');
    const r = await agent.done;
    expect(Date.now() - t).toBeLessThan(DEADLINE_MS);
    expect(r.code, describeRun(r)).toBe(0);
    const lines = logLines(r.stdout);
    expect(lines.find((l) => l.msg.startsWith('created key file'))?.keyFile).toBe(keyFile);
    expect(lines.some((l) => l.msg === 'backup succeeded'), describeRun(r)).toBe(true);
    expect(lines.at(-1)?.msg).toBe('agent stopped');
  }, TIMEOUT_MS);

  it('a restart reuses the key and repository and reads nothing that did not change', async () => {
    const before = snapshotCount();
    const agent = startCairn(['agent', '--config', configFile]);
    await waitFor('the second snapshot', () => (snapshotCount() > before ? true : undefined), agent);
    agent.child.kill('SIGINT');
    const r = await agent.done;
    expect(r.code, describeRun(r)).toBe(0);
    const done = logLines(r.stdout).find((l) => l.msg === 'backup succeeded');
    expect(done?.bytesRead).toBe(0);
    expect(done?.filesUnmodified).toBe(50);
    expect(logLines(r.stdout).some((l) => l.msg.startsWith('created'))).toBe(false);
  }, TIMEOUT_MS);

  it('SIGTERM in the middle of a backup stops within the deadline; check passes and the next run completes', async () => {
    const big = path.join(src, 'big');
    fs.mkdirSync(big);
    for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(big, `r${i}.bin`), randomBuffer(8 * MiB));
    const packsBefore = listPacks(repo).length;
    const agent = startCairn(['agent', '--config', configFile]);
    await waitFor('a new pack', () => (listPacks(repo).length > packsBefore ? true : undefined), agent);
    const t = Date.now();
    agent.child.kill('SIGTERM');
    const r = await agent.done;
    expect(Date.now() - t).toBeLessThan(DEADLINE_MS);
    expect(r.code, describeRun(r)).toBe(0);
    expect(logLines(r.stdout).some((l) => l.msg.startsWith('backup cancelled'))).toBe(true);
    const check = await runCairn(['check'], { env: { CAIRN_REPO: repo, CAIRN_KEY_FILE: keyFile } });
    expect(check.code, describeRun(check)).toBe(0);
    const before = snapshotCount();
    const again = startCairn(['agent', '--config', configFile]);
    await waitFor('the snapshot after the cancelled one', () => (snapshotCount() > before ? true : undefined), again);
    again.child.kill('SIGTERM');
    expect((await again.done).code).toBe(0);
  }, TIMEOUT_MS);

  it('--check-config lists every mistake of a bad config with its key path and exits 2', async () => {
    const bad = path.join(root, 'bad.yaml');
    fs.writeFileSync(bad, 'repository: {path: repo, password: hunter2}\nsources:\n  - {name: Docs, kind: folder, paths: [src], schedule: ["every day"]}\n');
    const r = await runCairn(['agent', '--config', bad, '--check-config']);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain('3 problems');
    expect(r.stderr).toContain('repository.password: passwords are never written in the config');
    expect(r.stderr).toContain('sources[0].name: "Docs" is not allowed');
    expect(r.stderr).toContain('sources[0].schedule[0]: "every day" is not a cron expression');
    const ok = await runCairn(['agent', '--config', configFile, '--check-config']);
    expect(ok.code, describeRun(ok)).toBe(0);
  }, TIMEOUT_MS);
});
