import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job, NewJob } from '../../src/jobs/job.js';
import { type JobStore, createMemoryJobStore, matchesJobFilter } from '../../src/jobs/job-store.js';
import { openSqliteJobStore } from '../../src/jobs/sqlite-job-store.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();
const newJob = (over: Partial<NewJob> = {}): NewJob => ({ kind: 'backup', trigger: 'schedule', params: { source: 'web' }, source: 'web', createdAt: at(0), ...over });

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sqliteFile(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'cairn-jobs-'));
  dirs.push(d);
  return path.join(d, 'jobs.db');
}

const stores: [string, () => JobStore][] = [
  ['memory', createMemoryJobStore],
  ['sqlite', () => openSqliteJobStore(sqliteFile())],
];

describe.each(stores)('JobStore contract: %s', (_name, make) => {
  it('inserts queued jobs with growing ids and reads them back whole', () => {
    const s = make();
    const a = s.insert(newJob());
    const b = s.insert(newJob({ kind: 'restore', source: undefined, params: { snapshot: 'latest', target: '/tmp/x' }, trigger: 'api', createdAt: at(1) }));
    expect(a.state).toBe('queued');
    expect(Number(b.id)).toBeGreaterThan(Number(a.id));
    expect(s.get(b.id)).toEqual({ id: b.id, kind: 'restore', state: 'queued', trigger: 'api', params: { snapshot: 'latest', target: '/tmp/x' }, createdAt: at(1) });
    expect(s.get('999')).toBeUndefined();
    expect(s.get('not-a-number')).toBeUndefined();
    s.close();
  });

  it('updates state, times, progress, result and error', () => {
    const s = make();
    const j = s.insert(newJob());
    s.update(j.id, { state: 'running', startedAt: at(1), progress: { phase: 'backup', files: 3, bytes: 10, rateBytesPerSec: 5, errors: 0 } });
    const done = s.update(j.id, { state: 'failed', finishedAt: at(2), error: { code: 'E_HOOK_FAILED', message: 'pre hook exited 1', output: 'boom\n' }, result: { n: 1 } });
    expect(done).toMatchObject({ state: 'failed', startedAt: at(1), finishedAt: at(2), progress: { files: 3 }, error: { code: 'E_HOOK_FAILED', output: 'boom\n' }, result: { n: 1 } });
    expect(s.get(j.id)).toEqual(done);
    expect(() => s.update('12345', { state: 'running' })).toThrow(/no job 12345/);
    s.close();
  });

  it('lists newest first with filters and cursor pages that cover every match once', () => {
    const s = make();
    const all: Job[] = [];
    for (let i = 0; i < 23; i++) {
      const j = s.insert(newJob({ kind: i % 3 === 0 ? 'check' : 'backup', source: i % 2 ? 'web' : 'db', createdAt: at(i) }));
      all.push(i % 4 === 0 ? s.update(j.id, { state: 'succeeded' }) : j);
    }
    const filter = { kind: 'backup' as const, sinceMs: Date.parse(at(5)) };
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = s.list(filter, 4, cursor);
      expect(page.jobs.length).toBeLessThanOrEqual(4);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.next;
    } while (cursor);
    const expected = all.filter((j) => matchesJobFilter(j, filter)).map((j) => j.id).reverse();
    expect(seen).toEqual(expected);
    expect(s.list({ states: ['succeeded'], source: 'db' }, 100).jobs.every((j) => j.state === 'succeeded' && j.source === 'db')).toBe(true);
    expect(s.list({ states: [] }, 10).jobs).toEqual([]);
    expect(s.list({ states: ['succeeded', 'succeeded', 'queued'] }, 100).jobs.length).toBe(s.list({ states: ['queued', 'succeeded'] }, 100).jobs.length);
    expect(() => s.list({}, 10, 'bogus')).toThrow(/not one this agent gave/);
    s.close();
  });

  it('finds the latest job of a source by state, and counts by kind and state', () => {
    const s = make();
    const a = s.insert(newJob({ createdAt: at(0) }));
    s.update(a.id, { state: 'succeeded' });
    const b = s.insert(newJob({ createdAt: at(10) }));
    s.update(b.id, { state: 'failed' });
    s.insert(newJob({ kind: 'check', createdAt: at(20) }));
    expect(s.latest('web', 'backup')?.id).toBe(b.id);
    expect(s.latest('web', 'backup', ['succeeded'])?.id).toBe(a.id);
    expect(s.latest('nope', 'backup')).toBeUndefined();
    expect(s.countSince(Date.parse(at(5))).sort((x, y) => x.kind.localeCompare(y.kind))).toEqual([
      { kind: 'backup', state: 'failed', count: 1 },
      { kind: 'check', state: 'queued', count: 1 },
    ]);
    s.close();
  });

  it('marks jobs left queued or running interrupted, and expires only finished old jobs', () => {
    const s = make();
    const q = s.insert(newJob({ createdAt: at(0) }));
    const r = s.insert(newJob({ createdAt: at(1) }));
    s.update(r.id, { state: 'running' });
    const ok = s.insert(newJob({ createdAt: at(2) }));
    s.update(ok.id, { state: 'succeeded' });
    const left = s.interruptLeftovers(at(60), 'the agent stopped while this job was running');
    expect(left.map((j) => j.id).sort()).toEqual([q.id, r.id].sort());
    expect(s.get(r.id)).toMatchObject({ state: 'interrupted', finishedAt: at(60), error: { code: 'E_INTERRUPTED' } });
    expect(s.get(ok.id)?.state).toBe('succeeded');
    const young = s.insert(newJob({ createdAt: at(100) }));
    expect(s.expire(Date.parse(at(50)))).toBe(3);
    expect(s.get(young.id)).toBeDefined();
    s.close();
  });
});

describe('SQLite job store', () => {
  it('keeps the history across reopen (a restart)', () => {
    const file = sqliteFile();
    const s = openSqliteJobStore(file);
    const j = s.insert(newJob());
    s.update(j.id, { state: 'succeeded', result: { snapshotId: 'abc' } });
    s.close();
    const again = openSqliteJobStore(file);
    expect(again.get(j.id)).toMatchObject({ state: 'succeeded', result: { snapshotId: 'abc' } });
    expect(Number(again.insert(newJob()).id)).toBeGreaterThan(Number(j.id));
    again.close();
  });

  it('says clearly when the file cannot be opened', () => {
    expect(() => openSqliteJobStore('/nonexistent-dir/x/jobs.db')).toThrow(/cannot open job database \/nonexistent-dir\/x\/jobs\.db/);
  });
});
