import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AgentStatus } from '../../src/api/app.js';
import { tokenChecker } from '../../src/api/auth.js';
import { createMetrics } from '../../src/api/metrics.js';
import type { Clock } from '../../src/jobs/clock.js';
import { JobManager, type JobOutcome } from '../../src/jobs/job-manager.js';
import type { Job } from '../../src/jobs/job.js';
import { createMemoryJobStore } from '../../src/jobs/job-store.js';
import { admitJob } from '../../src/jobs/runners.js';
import type { Health } from '../../src/jobs/status.js';

const READER = 'r'.repeat(32);
const OPERATOR = 'o'.repeat(32);
const sources = new Map([['web', { name: 'web', paths: ['/var/www'], schedule: ['0 * * * *'] }]]);

/** A job runner that finishes when told to, or stops when cancelled. */
function gatedRunner() {
  const gates: (() => void)[] = [];
  const started: string[] = [];
  const run = (job: Job, ctx: { signal: AbortSignal }): Promise<JobOutcome> =>
    new Promise((resolve, reject) => {
      started.push(job.id);
      gates.push(() => resolve({ result: { snapshotId: `snap-${job.id}`, bytesRead: 10, bytesAdded: 5, bytesTotal: 20 } }));
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
  return { run, started, release: () => gates.shift()?.() };
}

const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

let health: Health = { status: 'ok', reasons: [] };
const status: AgentStatus = {
  sources: () => [{ name: 'web', kind: 'folder', paths: ['/var/www'], excludes: [], tags: ['t'], schedule: ['0 * * * *'], watch: false, protection: { state: 'protected' } }],
  summary: () => ({ agent: 'a1', version: '0.1.0', jobsLast24h: { total: 0, byKind: {} }, sources: { total: 1, protected: 1, late: 0, failing: 0, neverBackedUp: 0, sourceMissing: 0, softDeleted: 0 }, queued: 0 }),
  health: () => health,
  snapshots: () => Promise.resolve([{ id: 'ab'.repeat(32), time: '2026-11-23T10:00:00.000Z', host: 'h', source: 'web', paths: ['/var/www'], tags: [], deleted: false, summary: { filesNew: 1 } }]),
};

async function setup(tokens = true) {
  const runner = gatedRunner();
  const store = createMemoryJobStore();
  const jobs = new JobManager({ store, clock, logger: pino({ level: 'silent' }), runners: { backup: runner.run, restore: runner.run, check: runner.run }, admit: admitJob((n) => sources.get(n)) });
  const metrics = createMetrics({ lastSuccessMs: () => [{ source: 'web', ms: 1_700_000_000_000 }], running: () => (jobs.running() ? 1 : 0), queued: () => jobs.queued });
  const app = await buildApp({ jobs, status, metrics, roleOf: tokenChecker(tokens ? [{ role: 'reader', secret: READER }, { role: 'operator', secret: OPERATOR }] : []), tokensConfigured: () => tokens, version: '0.1.0' });
  return { app, jobs, runner, store };
}

type Ctx = Awaited<ReturnType<typeof setup>>;
let ctx: Ctx;
beforeEach(async () => {
  health = { status: 'ok', reasons: [] };
  ctx = await setup();
});
afterEach(async () => {
  await ctx.jobs.stop('test over', 1000);
  await ctx.app.close();
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

describe('API: auth', () => {
  it('serves /health without a token and 503 when failing', async () => {
    expect((await ctx.app.inject('/health')).json()).toEqual({ status: 'ok', reasons: [] });
    health = { status: 'failing', reasons: [{ code: 'repository-unreachable', message: 'ENOENT' }] };
    const r = await ctx.app.inject('/health');
    expect(r.statusCode).toBe(503);
    expect(r.json().reasons[0].code).toBe('repository-unreachable');
  });

  it.each(['/v1/jobs', '/v1/summary', '/v1/sources', '/v1/snapshots', '/metrics', '/v1/jobs/1'])('%s: 401 without a token or with a wrong one, 200/404 with a reader token', async (url) => {
    const none = await ctx.app.inject(url);
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: 'E_UNAUTHORIZED' });
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await ctx.app.inject({ url, headers: as('x'.repeat(32)) })).statusCode).toBe(401);
    expect((await ctx.app.inject({ url, headers: { authorization: `Basic ${READER}` } })).statusCode).toBe(401);
    expect([200, 404]).toContain((await ctx.app.inject({ url, headers: as(READER) })).statusCode);
  });

  it('a reader gets 403 on operator routes; an operator may', async () => {
    const r = await ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(READER), payload: { kind: 'backup', source: 'web' } });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ code: 'E_FORBIDDEN', message: expect.stringMatching(/needs operator/) });
    expect((await ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(OPERATOR), payload: { kind: 'backup', source: 'web' } })).statusCode).toBe(202);
  });

  it('with no tokens configured, only /health answers, and the 401 says why', async () => {
    const bare = await setup(false);
    expect((await bare.app.inject('/health')).statusCode).toBe(200);
    const r = await bare.app.inject({ url: '/v1/jobs', headers: as(OPERATOR) });
    expect(r.statusCode).toBe(401);
    expect(r.json().message).toMatch(/no API tokens are configured/);
    await bare.app.close();
  });
});

describe('API: jobs', () => {
  it('queues, runs, lists, and cancels jobs; history pages with a cursor', async () => {
    const post = (payload: object) => ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(OPERATOR), payload });
    const first = await post({ kind: 'backup', source: 'web' });
    expect(first.statusCode).toBe(202);
    expect(first.headers.location).toBe(`/v1/jobs/${first.json().id}`);
    await expect.poll(() => ctx.runner.started.length).toBe(1);
    const running = await ctx.app.inject({ url: `/v1/jobs/${first.json().id}`, headers: as(READER) });
    expect(running.json()).toMatchObject({ state: 'running', kind: 'backup', source: 'web', trigger: 'api', progress: { phase: 'starting', files: 0 } });
    const second = (await post({ kind: 'check', readData: true })).json();
    const third = (await post({ kind: 'restore', snapshot: 'latest', target: '/tmp/restore-here' })).json();
    expect(third).toMatchObject({ state: 'queued', params: { snapshot: 'latest', target: '/tmp/restore-here' } });
    const cancelled = await ctx.app.inject({ method: 'POST', url: `/v1/jobs/${third.id}/cancel`, headers: as(OPERATOR) });
    expect(cancelled.statusCode).toBe(202);
    expect(cancelled.json()).toMatchObject({ state: 'cancelled', error: { code: 'E_CANCELLED' } });
    const again = await ctx.app.inject({ method: 'POST', url: `/v1/jobs/${third.id}/cancel`, headers: as(OPERATOR) });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('E_JOB_FINISHED');
    ctx.runner.release();
    await expect.poll(() => ctx.runner.started.length).toBe(2);
    ctx.runner.release();
    await ctx.jobs.idle();
    const page1 = (await ctx.app.inject({ url: '/v1/jobs?limit=2', headers: as(READER) })).json();
    expect(page1.jobs.map((j: Job) => j.id)).toEqual([third.id, second.id]);
    const page2 = (await ctx.app.inject({ url: `/v1/jobs?limit=2&cursor=${page1.next}`, headers: as(READER) })).json();
    expect(page2.jobs.map((j: Job) => j.id)).toEqual([first.json().id]);
    expect(page2.next).toBeUndefined();
    const ok = (await ctx.app.inject({ url: '/v1/jobs?status=succeeded,failed&kind=backup&source=web', headers: as(READER) })).json();
    expect(ok.jobs).toHaveLength(1);
    expect(ok.jobs[0]).toMatchObject({ state: 'succeeded', result: { snapshotId: `snap-${first.json().id}` } });
    const future = (await ctx.app.inject({ url: '/v1/jobs?since=2999-01-01T00:00:00Z', headers: as(READER) })).json();
    expect(future.jobs).toEqual([]);
  });

  it('cancels a running job at its next safe point', async () => {
    const job = (await ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(OPERATOR), payload: { kind: 'backup', source: 'web' } })).json();
    await expect.poll(() => ctx.runner.started.length).toBe(1);
    expect((await ctx.app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: as(OPERATOR) })).statusCode).toBe(202);
    await ctx.jobs.idle();
    expect(ctx.store.get(job.id)).toMatchObject({ state: 'cancelled', error: { code: 'E_CANCELLED', message: expect.stringMatching(/cancelled on request/) } });
  });

  it.each([
    [{ kind: 'backup' }, /body must have required property 'source'/],
    [{ kind: 'backup', source: 'web', extra: 1 }, /must NOT have additional properties/],
    [{ kind: 'prune' }, /kind/],
    [{ kind: 'restore', target: 'relative/path' }, /target: a restore needs an absolute target path/],
    [{ kind: 'restore', target: '/x', snapshot: 'XYZ' }, /snapshot/],
    [{ kind: 'check', subset: '0/10' }, /subset/],
    [{ kind: 'backup', source: 'nope' }, /source: no source named "nope"/],
  ])('POST /v1/jobs %j → 400 naming the field', async (payload, message) => {
    const r = await ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(OPERATOR), payload });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(message);
    expect(r.json().code).toMatch(/^E_/);
  });

  it.each([
    ['/v1/jobs?limit=0', /limit/],
    ['/v1/jobs?status=done', /status/],
    ['/v1/jobs?since=yesterday', /since/],
    ['/v1/jobs?cursor=bogus', /cursor "bogus" is not one this agent gave/],
    ['/v1/jobs/abc', /id/],
  ])('GET %s → 400 naming the field', async (url, message) => {
    const r = await ctx.app.inject({ url, headers: as(READER) });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(message);
  });

  it('404 for an unknown job and an unknown route, with a stable code', async () => {
    expect((await ctx.app.inject({ url: '/v1/jobs/424242', headers: as(READER) })).json()).toMatchObject({ statusCode: 404, code: 'E_JOB_NOT_FOUND' });
    expect((await ctx.app.inject({ url: '/v2/nothing', headers: as(READER) })).json()).toMatchObject({ statusCode: 404, code: 'E_NOT_FOUND' });
  });
});

describe('API: reads', () => {
  it('serves sources, snapshots and summary in their schemas', async () => {
    expect((await ctx.app.inject({ url: '/v1/sources', headers: as(READER) })).json().sources[0]).toMatchObject({ name: 'web', protection: { state: 'protected' } });
    expect((await ctx.app.inject({ url: '/v1/snapshots?source=web', headers: as(READER) })).json().snapshots[0]).toMatchObject({ source: 'web', deleted: false, summary: { filesNew: 1 } });
    expect((await ctx.app.inject({ url: '/v1/summary', headers: as(READER) })).json()).toMatchObject({ agent: 'a1', sources: { protected: 1 } });
  });

  it('serves Prometheus text that counts finished jobs', async () => {
    await ctx.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(OPERATOR), payload: { kind: 'backup', source: 'web' } });
    await expect.poll(() => ctx.runner.started.length).toBe(1);
    ctx.runner.release();
    await ctx.jobs.idle();
    const r = await ctx.app.inject({ url: '/metrics', headers: as(READER) });
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toMatch(/^cairn_source_last_success_timestamp_seconds\{source="web"\} 1700000000$/m);
    expect(r.body).toMatch(/^# TYPE cairn_jobs_total counter$/m);
  });

  it('serves the OpenAPI document at /docs/json to a reader', async () => {
    expect((await ctx.app.inject('/docs/json')).statusCode).toBe(401);
    expect((await ctx.app.inject('/docs')).statusCode).toBe(401);
    const r = await ctx.app.inject({ url: '/docs/json', headers: as(READER) });
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel', '/v1/sources', '/v1/snapshots', '/v1/summary', '/metrics']));
  });
});
