// The real agent process over a real socket: first start creates key, tokens and repository and
// backs up at once; the API shows the job, starts another, cancels a third; a restart finds the
// history intact (and a job a kill -9 left running marked interrupted); SIGTERM in the middle of a
// backup stops within the deadline, check passes and the next backup completes; /metrics parses
// as Prometheus text; a config with mistakes is refused with every one of them and exit code 2.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCli, describeRun, hasProgram, killStrayCairns, listPacks, makeTempDir, removeTempDir, runCairn, startCairn, waitFor } from './helpers/cli.js';
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
  api?: string;
  keyFile?: string;
  state?: string;
  jobId?: string;
}
interface JobJson {
  id: string;
  kind: string;
  state: string;
  trigger: string;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  progress?: { phase: string; files: number; bytes: number };
}
const logLines = (stdout: string): LogLine[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

/** A started agent and a client for its API. */
async function startAgent(): Promise<{ cli: RunningCli; api: (route: string, init?: { method?: string; body?: unknown; token?: string }) => Promise<{ status: number; json: () => unknown; text: string }> }> {
  const cli = startCairn(['agent', '--config', configFile]);
  const url = await waitFor('the API address', () => logLines(cli.stdoutSoFar()).find((l) => l.msg === 'agent started')?.api, cli);
  const operator = fs.readFileSync(path.join(root, 'operator.token'), 'utf8').trim();
  const api = async (route: string, init: { method?: string; body?: unknown; token?: string } = {}) => {
    const r = await fetch(url + route, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? operator}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, text, json: () => JSON.parse(text) as unknown };
  };
  return { cli, api };
}

async function waitForJob(api: Awaited<ReturnType<typeof startAgent>>['api'], id: string, states: string[], cli: RunningCli): Promise<JobJson> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    if (cli.exited()) throw new Error(`agent exited: ${cli.stderrSoFar()}`);
    const j = (await api(`/v1/jobs/${id}`)).json() as JobJson;
    if (states.includes(j.state)) return j;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`job ${id} never reached ${states.join('/')}`);
}

beforeAll(async () => {
  root = await makeTempDir('agent');
  src = path.join(root, 'src');
  repo = path.join(root, 'repo');
  keyFile = path.join(root, 'secrets', 'agent.key');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, 'docs', `f${i}.txt`), `document ${i}\n`.repeat(i + 1));
  configFile = path.join(root, 'cairn.yaml');
  fs.writeFileSync(configFile, [
    'agent: {stateDir: state}',
    'repository: {path: repo, keyFile: secrets/agent.key}',
    'api: {port: 0, tokens: [{role: reader, file: reader.token}, {role: operator, file: operator.token}]}',
    'sources:',
    '  - {name: docs, kind: folder, paths: [src], schedule: ["0 0 1 1 *"]}',
    // a backup that takes 3 s in its pre hook: a job queued behind it is certainly still queued
    '  - {name: slow, kind: folder, paths: [src/docs], schedule: ["0 0 1 1 *"], hooks: {pre: "sleep 3"}}',
  ].join('\n') + '\n');
});
afterAll(async () => {
  killStrayCairns();
  await removeTempDir(root);
});

describe('cairn agent', () => {
  it('first start: 0600 key and token files, a first backup at once; the API starts one job and cancels another', async () => {
    const { cli, api } = await startAgent();
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(root, 'operator.token')).mode & 0o777).toBe(0o600);
    expect((await fetch(`${logLines(cli.stdoutSoFar()).find((l) => l.msg === 'agent started')!.api}/health`)).status).toBe(200);
    const first = ((await api('/v1/jobs?kind=backup&source=docs')).json() as { jobs: JobJson[] }).jobs;
    expect(first).toHaveLength(1);
    expect(first[0]!.trigger).toBe('start');
    expect((await waitForJob(api, first[0]!.id, ['succeeded'], cli)).result).toMatchObject({ filesNew: 50 });
    const reader = fs.readFileSync(path.join(root, 'reader.token'), 'utf8').trim();
    expect((await api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'docs' }, token: reader })).status).toBe(403);
    const second = await api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'docs' } });
    expect(second.status, second.text).toBe(202);
    expect((await waitForJob(api, (second.json() as JobJson).id, ['succeeded'], cli)).result).toMatchObject({ bytesRead: 0, filesUnmodified: 50 });
    // a third, queued behind a backup that spends 3 s in its pre hook, is cancelled before it starts
    const slow = (await api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'slow' } })).json() as JobJson;
    await waitForJob(api, slow.id, ['running'], cli);
    const third = (await api('/v1/jobs', { method: 'POST', body: { kind: 'check', readData: true } })).json() as JobJson;
    expect(third.state).toBe('queued');
    const cancel = await api(`/v1/jobs/${third.id}/cancel`, { method: 'POST' });
    expect(cancel.status, cancel.text).toBe(202);
    expect(cancel.json()).toMatchObject({ state: 'cancelled', error: { code: 'E_CANCELLED' } });
    expect((await waitForJob(api, slow.id, ['succeeded', 'failed'], cli)).state).toBe('succeeded');
    expect(((await api(`/v1/jobs/${third.id}`)).json() as JobJson).state).toBe('cancelled');
    const metrics = await api('/metrics');
    expect(metrics.status).toBe(200);
    expectPrometheusText(metrics.text);
    if (hasProgram('promtool')) {
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics.text, encoding: 'utf8' });
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    }
    expect(metrics.text).toMatch(/^cairn_jobs_total\{kind="backup",state="succeeded"\} 4$/m);
    expect(metrics.text).toMatch(/^cairn_jobs_total\{kind="check",state="cancelled"\} 1$/m);
    cli.child.kill('SIGTERM');
    const r = await cli.done;
    expect(r.code, describeRun(r)).toBe(0);
    expect(logLines(r.stdout).find((l) => l.msg.startsWith('created key file'))?.keyFile).toBe(keyFile);
    expect(logLines(r.stdout).at(-1)?.msg).toBe('agent stopped');
  }, TIMEOUT_MS);

  it('a restart keeps the history, runs nothing that is not due, and marks a job a kill -9 left running interrupted', async () => {
    const { cli, api } = await startAgent();
    const jobs = ((await api('/v1/jobs')).json() as { jobs: JobJson[] }).jobs;
    expect(jobs.map((j) => j.state).filter((s) => s === 'succeeded').length).toBeGreaterThanOrEqual(2);
    expect(jobs.some((j) => j.trigger === 'start' && j.state === 'succeeded')).toBe(true);
    expect(jobs.every((j) => j.state !== 'queued' && j.state !== 'running')).toBe(true);
    // a big file makes the next backup last long enough to be killed in the middle
    fs.mkdirSync(path.join(src, 'big'), { recursive: true });
    for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(src, 'big', `r${i}.bin`), randomBuffer(8 * MiB));
    const packsBefore = listPacks(repo).length;
    const job = (await api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'docs' } })).json() as JobJson;
    await waitFor('a new pack', () => (listPacks(repo).length > packsBefore ? true : undefined), cli);
    cli.child.kill('SIGKILL');
    await cli.done;
    const again = await startAgent();
    const killed = (await again.api(`/v1/jobs/${job.id}`)).json() as JobJson;
    expect(killed).toMatchObject({ state: 'interrupted', error: { code: 'E_INTERRUPTED' } });
    const sources = (await again.api('/v1/sources')).json() as { sources: { name: string; protection: { state: string } }[] };
    expect(sources.sources[0]).toMatchObject({ name: 'docs', protection: { state: 'failing' } });
    const health = (await again.api('/health')).json() as { status: string; reasons: { code: string }[] };
    expect(health.status).toBe('degraded');
    again.cli.child.kill('SIGTERM');
    expect((await again.cli.done).code).toBe(0);
  }, TIMEOUT_MS);

  it('SIGTERM in the middle of a backup stops within the deadline; check passes; the next backup completes and reuses the upload', async () => {
    fs.writeFileSync(path.join(src, 'big', 'extra.bin'), randomBuffer(64 * MiB));
    const { cli, api } = await startAgent();
    const packsBefore = listPacks(repo).length;
    const job = (await api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'docs' } })).json() as JobJson;
    await waitFor('a new pack', () => (listPacks(repo).length > packsBefore ? true : undefined), cli);
    const t = Date.now();
    cli.child.kill('SIGTERM');
    const r = await cli.done;
    expect(Date.now() - t).toBeLessThan(DEADLINE_MS);
    expect(r.code, describeRun(r)).toBe(0);
    const check = await runCairn(['check'], { env: { CAIRN_REPO: repo, CAIRN_KEY_FILE: keyFile } });
    expect(check.code, describeRun(check)).toBe(0);
    const again = await startAgent();
    expect(((await again.api(`/v1/jobs/${job.id}`)).json() as JobJson).state).toBe('cancelled');
    const next = (await again.api('/v1/jobs', { method: 'POST', body: { kind: 'backup', source: 'docs' } })).json() as JobJson;
    const done = await waitForJob(again.api, next.id, ['succeeded', 'failed'], again.cli);
    expect(done.state, JSON.stringify(done)).toBe('succeeded');
    // what the cancelled run uploaded is not uploaded again
    expect(Number(done.result!.bytesAdded)).toBeLessThan(Number(done.result!.bytesRead));
    again.cli.child.kill('SIGTERM');
    expect((await again.cli.done).code).toBe(0);
  }, TIMEOUT_MS);

  it('SIGHUP reloads sources in place, and keeps the running config when the new one has mistakes', async () => {
    const good = fs.readFileSync(configFile, 'utf8');
    const { cli, api } = await startAgent();
    const names = async (): Promise<string[]> => ((await api('/v1/sources')).json() as { sources: { name: string }[] }).sources.map((s) => s.name);
    expect(await names()).toEqual(['docs', 'slow']);
    fs.mkdirSync(path.join(root, 'more'), { recursive: true });
    fs.writeFileSync(configFile, `${good}  - {name: more, kind: folder, paths: [more], schedule: ["0 0 1 1 *"], tags: [new]}\n`);
    cli.child.kill('SIGHUP');
    await waitFor('the reload', () => (logLines(cli.stdoutSoFar()).some((l) => l.msg === 'config reloaded') ? true : undefined), cli);
    expect(await names()).toEqual(['docs', 'slow', 'more']);
    fs.writeFileSync(configFile, `${good}  - {name: Bad Name, kind: folder, paths: [more], schedule: ["0 0 1 1 *"]}\n`);
    cli.child.kill('SIGHUP');
    await waitFor('the refusal', () => (logLines(cli.stdoutSoFar()).some((l) => l.msg.startsWith('config not reloaded')) ? true : undefined), cli);
    expect(await names()).toEqual(['docs', 'slow', 'more']);
    fs.writeFileSync(configFile, good);
    cli.child.kill('SIGTERM');
    expect((await cli.done).code).toBe(0);
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

/** Checks text against the Prometheus exposition format (what promtool check metrics parses):
 *  HELP/TYPE lines before their samples, each metric family once, well-formed samples. */
function expectPrometheusText(text: string): void {
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (-?[0-9.e+]+|NaN|[+-]Inf)( -?\d+)?$/;
  const typed = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(typed.has(meta[2]!), `family ${meta[2]} typed twice`).toBe(false);
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        typed.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = sample.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const family = m![1]!.replace(/_(bucket|sum|count|total|created)$/, '');
    expect(typed.has(m![1]!) || typed.has(family), `sample before its TYPE: ${line}`).toBe(true);
  }
}
