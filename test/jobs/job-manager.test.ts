import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/jobs/clock.js';
import { JobManager, type JobOutcome, type RunContext } from '../../src/jobs/job-manager.js';
import type { Job } from '../../src/jobs/job.js';
import { type JobStore, createMemoryJobStore } from '../../src/jobs/job-store.js';
import { openSqliteJobStore } from '../../src/jobs/sqlite-job-store.js';
import { CairnError } from '../../src/core/errors.js';
import { FakeClock } from './fake-clock.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

type Step = (job: Job, ctx: RunContext) => Promise<JobOutcome>;

function manager(store: JobStore, run: Step, clock = systemClock, finished: Job[] = []) {
  return new JobManager({
    store,
    clock,
    logger: silent,
    runners: { backup: run, restore: run, check: run },
    admit: (_kind, params) => (typeof params.source === 'string' ? { source: params.source } : {}),
    onFinished: (j) => finished.push(j),
  });
}

/** Runs until cancelled, reporting progress the way the engine does. */
const untilCancelled: Step = (_job, ctx) =>
  new Promise((_resolve, reject) => {
    ctx.progress.setPhase('backup');
    ctx.progress.setTotal(10, 1000);
    ctx.progress.add(2, 200);
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

describe('JobManager', () => {
  it('runs jobs one at a time in order, through queued → running → succeeded', async () => {
    const store = createMemoryJobStore();
    const order: string[] = [];
    let concurrent = 0;
    const m = manager(store, async (job) => {
      concurrent++;
      expect(concurrent).toBe(1);
      order.push(job.id);
      await new Promise((r) => setImmediate(r));
      concurrent--;
      return { result: { id: job.id } };
    });
    const a = m.submit('backup', { source: 'a' }, 'schedule').job;
    const b = m.submit('check', {}, 'api').job;
    const c = m.submit('backup', { source: 'b' }, 'api').job;
    await m.idle();
    expect(order).toEqual([a.id, b.id, c.id]);
    for (const j of [a, b, c]) expect(store.get(j.id)).toMatchObject({ state: 'succeeded', startedAt: expect.any(String), finishedAt: expect.any(String), result: { id: j.id } });
  });

  it('does not stack up backups of a source while one is queued', async () => {
    const store = createMemoryJobStore();
    const m = manager(store, untilCancelled);
    const running = m.submit('backup', { source: 'a' }, 'start').job;
    const queued = m.submit('backup', { source: 'a' }, 'schedule');
    const again = m.submit('backup', { source: 'a' }, 'api');
    expect(queued.existing).toBe(false);
    expect(again).toEqual({ job: queued.job, existing: true });
    expect(m.submit('backup', { source: 'b' }, 'api').existing).toBe(false);
    expect(m.running()?.id).toBe(running.id);
    await m.stop('test over', 5000);
  });

  it('fails a job with the thrown error code, and a job whose outcome has an error', async () => {
    const store = createMemoryJobStore();
    const m = manager(store, (job) => {
      if (job.kind === 'backup') return Promise.reject(new CairnError('E_PATH_NOT_FOUND', 'cannot back up /x', { hint: 'check the path' }));
      if (job.kind === 'check') return Promise.resolve({ result: { errors: 1 }, error: { code: 'E_INTEGRITY', message: '1 error' } });
      return Promise.reject(new TypeError('boom'));
    });
    const a = m.submit('backup', { source: 'a' }, 'api').job;
    const b = m.submit('check', {}, 'api').job;
    const c = m.submit('restore', {}, 'api').job;
    await m.idle();
    expect(store.get(a.id)).toMatchObject({ state: 'failed', error: { code: 'E_PATH_NOT_FOUND', message: 'cannot back up /x', hint: 'check the path' } });
    expect(store.get(b.id)).toMatchObject({ state: 'failed', result: { errors: 1 }, error: { code: 'E_INTEGRITY' } });
    expect(store.get(c.id)).toMatchObject({ state: 'failed', error: { code: 'E_INTERNAL', message: 'boom' } });
  });

  it('shows live progress with rate and ETA, and writes it to the store about once a second', async () => {
    const store = createMemoryJobStore();
    const clock = new FakeClock('2026-11-23T10:00:00Z');
    const m = manager(store, untilCancelled, clock);
    const j = m.submit('backup', { source: 'a' }, 'api').job;
    expect(store.get(j.id)?.progress).toBeUndefined();
    clock.advance(1000);
    expect(store.get(j.id)?.progress).toMatchObject({ phase: 'backup', files: 2, bytes: 200, filesTotal: 10, bytesTotal: 1000 });
    const live = m.get(j.id)!;
    expect(live.state).toBe('running');
    expect(live.progress?.rateBytesPerSec).toBe(0);
    await m.stop('test over', 5000);
  });

  it('cancels a queued job at once and a running one at its safe point; a finished job cannot be cancelled', async () => {
    const store = createMemoryJobStore();
    const finished: Job[] = [];
    const m = manager(store, untilCancelled, systemClock, finished);
    const running = m.submit('backup', { source: 'a' }, 'api').job;
    const queued = m.submit('check', {}, 'api').job;
    expect(m.cancel(queued.id)).toMatchObject({ state: 'cancelled', error: { message: 'cancelled before it started' } });
    m.cancel(running.id);
    await m.idle();
    expect(store.get(running.id)).toMatchObject({ state: 'cancelled', progress: { files: 2 }, error: { code: 'E_CANCELLED', message: expect.stringMatching(/reused by the next backup/) } });
    expect(() => m.cancel(running.id)).toThrow(/already cancelled/);
    expect(() => m.cancel('999')).toThrow(/no job 999/);
    expect(finished.map((f) => f.state)).toEqual(['cancelled', 'cancelled']);
  });

  it('stop() cancels queued jobs, stops the running one, and refuses new ones', async () => {
    const store = createMemoryJobStore();
    const m = manager(store, untilCancelled);
    const a = m.submit('backup', { source: 'a' }, 'api').job;
    const b = m.submit('backup', { source: 'b' }, 'api').job;
    expect(await m.stop('SIGTERM', 5000)).toBe(true);
    expect(store.get(a.id)).toMatchObject({ state: 'cancelled', error: { message: expect.stringMatching(/^SIGTERM/) } });
    expect(store.get(b.id)).toMatchObject({ state: 'cancelled', error: { message: 'not started: SIGTERM' } });
    expect(() => m.submit('check', {}, 'api')).toThrow(/stopping/);
  });

  it('a job database that cannot record a job (a full disk) does not stop the queue or crash the agent', async () => {
    const store = createMemoryJobStore();
    let full = true;
    const flaky: JobStore = { ...store, update: (id, patch) => {
      if (full && patch.finishedAt !== undefined) throw new Error('SQLITE_FULL: database or disk is full');
      return store.update(id, patch);
    } };
    const finished: Job[] = [];
    const m = manager(flaky, () => Promise.resolve({ result: { n: 1 } }), systemClock, finished);
    const a = m.submit('backup', { source: 'a' }, 'api').job;
    await m.idle();
    expect(finished.map((j) => [j.id, j.state])).toEqual([[a.id, 'succeeded']]);
    expect(store.get(a.id)?.state).toBe('running');
    full = false;
    const b = m.submit('backup', { source: 'a' }, 'api').job;
    await m.idle();
    expect(store.get(b.id)?.state).toBe('succeeded');
  });

  it('after a crash, the next start finds the history intact and the running job interrupted', () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'cairn-jm-'));
    dirs.push(d);
    const file = path.join(d, 'jobs.db');
    const first = openSqliteJobStore(file);
    const m = manager(first, untilCancelled);
    const done = first.insert({ kind: 'check', trigger: 'api', params: {}, createdAt: new Date().toISOString() });
    first.update(done.id, { state: 'succeeded' });
    const running = m.submit('backup', { source: 'a' }, 'schedule').job;
    const queued = m.submit('backup', { source: 'b' }, 'schedule').job;
    // the process dies here: no stop(), no close(); a second process opens the same file
    const second = openSqliteJobStore(file);
    const left = second.interruptLeftovers(new Date().toISOString(), 'the agent stopped while this job was queued or running');
    expect(left.map((j) => j.id)).toEqual([running.id, queued.id]);
    expect(second.get(running.id)).toMatchObject({ state: 'interrupted', error: { code: 'E_INTERRUPTED' } });
    expect(second.get(done.id)?.state).toBe('succeeded');
    second.close();
  });
});
