import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/jobs/job.js';
import { RecentFiresCache, prevFire } from '../../src/jobs/schedule.js';
import { type SourceFacts, judgeHealth, judgeSource } from '../../src/jobs/status.js';

const T = (iso: string): number => Date.parse(iso);
const job = (state: Job['state'], startedAt: string, extra: Partial<Job> = {}): Job => ({ id: String(T(startedAt)), kind: 'backup', state, trigger: 'schedule', params: {}, source: 'web', createdAt: startedAt, startedAt, ...extra });
const SIX_HOURLY = ['0 */6 * * *'];
const facts = (over: Partial<SourceFacts>): SourceFacts => ({ name: 'web', schedule: SIX_HOURLY, missingPaths: [], ...over });
const NOW = T('2026-11-23T13:00:00Z');

describe('judgeSource', () => {
  it.each([
    ['a missing path', facts({ missingPaths: ['/srv/gone'], lastSuccess: job('succeeded', '2026-11-23T12:00:00Z') }), 'source-missing', /\/srv\/gone does not exist/],
    ['no backup yet', facts({}), 'never-backed-up', /no backup has succeeded yet/],
    ['the first backup running', facts({ lastBackup: job('running', '2026-11-23T12:59:00Z') }), 'never-backed-up', /the first backup is running/],
    ['only failed attempts', facts({ lastBackup: job('failed', '2026-11-23T12:00:00Z', { error: { code: 'E_IO', message: 'disk gone' } }) }), 'failing', /never backed up; the last attempt failed: disk gone/],
    ['a good backup, then an interrupted one', facts({ lastSuccess: job('succeeded', '2026-11-23T06:00:00Z'), lastBackup: job('interrupted', '2026-11-23T12:00:00Z') }), 'failing', /the last backup interrupted/],
    ['a good backup at the latest fire time', facts({ lastSuccess: job('succeeded', '2026-11-23T12:00:01Z'), lastBackup: job('succeeded', '2026-11-23T12:00:01Z') }), 'protected', undefined],
    ['a good backup one run ago (the latest run may still be due)', facts({ lastSuccess: job('succeeded', '2026-11-23T06:00:01Z') }), 'protected', undefined],
    ['a good backup two runs ago', facts({ lastSuccess: job('succeeded', '2026-11-23T00:00:01Z') }), 'late', /before the scheduled run of 2026-11-23T06:00:00.000Z/],
  ])('%s → %s', (_what, f, state, reason) => {
    const p = judgeSource(f, NOW);
    expect(p.state).toBe(state);
    if (reason) expect(p.reason).toMatch(reason);
    // the cached fire times give the same answer
    expect(judgeSource(f, NOW, new RecentFiresCache('UTC').get(f.schedule, NOW))).toEqual(p);
  });
});

describe('judgeHealth', () => {
  it('is ok with every source protected, degraded for a source or disk problem, failing for the repository', () => {
    const ok = { name: 'web', protection: { state: 'protected' as const } };
    const late = { name: 'db', protection: { state: 'late' as const, reason: 'missed a run' } };
    expect(judgeHealth({ diskProblems: [], watcherProblems: [] }, [ok])).toEqual({ status: 'ok', reasons: [] });
    expect(judgeHealth({ diskProblems: ['state folder: 10 MiB free'], watcherProblems: [] }, [ok, late])).toEqual({
      status: 'degraded',
      reasons: [
        { code: 'disk-space-low', message: 'state folder: 10 MiB free' },
        { code: 'source-late', message: 'db: missed a run', source: 'db' },
      ],
    });
    expect(judgeHealth({ repositoryProblem: 'ENOENT', diskProblems: [], watcherProblems: [] }, [late]).status).toBe('failing');
  });
});

describe('RecentFiresCache', () => {
  it('answers as a fresh computation would, across fire times and a clock stepped back', () => {
    const cache = new RecentFiresCache('UTC');
    const exprs = ['0 */6 * * *', '30 1 * * 1'];
    const times = [];
    for (let t = T('2026-11-22T23:00:00Z'); t < T('2026-11-24T02:00:00Z'); t += 17 * 60_000) times.push(t);
    times.push(T('2026-11-20T00:00:00Z'), T('2026-11-23T06:00:00Z'), T('2026-11-23T05:59:59.999Z'));
    for (const t of times) {
      const latest = prevFire(exprs, t, 'UTC');
      expect(cache.get(exprs, t)).toMatchObject({ latest, before: prevFire(exprs, latest! - 1, 'UTC') });
    }
  });
});
