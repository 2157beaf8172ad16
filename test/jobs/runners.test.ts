import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/jobs/clock.js';
import { JobManager } from '../../src/jobs/job-manager.js';
import { type JobStore, createMemoryJobStore } from '../../src/jobs/job-store.js';
import { createLocalEngineOps } from '../../src/jobs/engine-ops.js';
import { type SourceSpec, admitJob, createRunners } from '../../src/jobs/runners.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

let root: string;
let repo: Repository;
let store: JobStore;
let jobs: JobManager;
let sources: Map<string, SourceSpec>;

beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'cairn-runners-'));
  mkdirSync(path.join(root, 'data', 'sub'), { recursive: true });
  writeFileSync(path.join(root, 'data', 'a.txt'), 'alpha\n');
  writeFileSync(path.join(root, 'data', 'sub', 'b.txt'), 'beta\n'.repeat(1000));
  ({ repo } = await newTestRepo());
  store = createMemoryJobStore();
  sources = new Map();
  const lookup = (n: string): SourceSpec | undefined => sources.get(n);
  jobs = new JobManager({ store, clock: systemClock, logger: pino({ level: 'silent' }), admit: admitJob(lookup), runners: createRunners({ engine: createLocalEngineOps(repo, { agentName: 'test-agent', program: 'cairn test' }), source: lookup, restoreOwners: false }) });
});
afterEach(async () => {
  await jobs.stop('test over', 5000);
  rmSync(root, { recursive: true, force: true });
});

const addSource = (over: Partial<SourceSpec> = {}): SourceSpec => {
  const s: SourceSpec = { name: 'docs', paths: [path.join(root, 'data')], schedule: ['0 * * * *'], ...over };
  sources.set(s.name, s);
  return s;
};
const run = async (kind: 'backup' | 'restore' | 'check', params: Record<string, unknown>) => {
  const { job } = jobs.submit(kind, params, 'api');
  await jobs.idle();
  return store.get(job.id)!;
};

describe('job runners on a real repository and real files', () => {
  it('backs up a source, restores it, and checks the repository', async () => {
    addSource({ tags: ['t1'] });
    const b = await run('backup', { source: 'docs' });
    expect(b).toMatchObject({ state: 'succeeded', result: { scan: 'full', filesNew: 2, bytesRead: 6 + 5000, errors: 0 }, progress: { phase: 'done', files: 2 } });
    const target = path.join(root, 'restored');
    const r = await run('restore', { source: 'docs', snapshot: 'latest', target });
    expect(r).toMatchObject({ state: 'succeeded', result: { snapshotId: b.result!.snapshotId, files: 2 } });
    expect(readFileSync(path.join(target, root, 'data', 'sub', 'b.txt'), 'utf8')).toBe('beta\n'.repeat(1000));
    const c = await run('check', { readData: true });
    expect(c).toMatchObject({ state: 'succeeded', result: { snapshots: 1, errorCount: 0 } });
    const again = await run('backup', { source: 'docs' });
    expect(again.result).toMatchObject({ parent: b.result!.snapshotId, bytesRead: 0, filesUnmodified: 2 });
  });

  it('a failing pre hook fails the job with its output, skips the backup, and still runs the post hook', async () => {
    const marker = path.join(root, 'post-ran');
    addSource({ hooks: { pre: 'echo "database will not flush"; exit 4', post: `echo "$CAIRN_JOB_STATUS" > ${marker}` } });
    const j = await run('backup', { source: 'docs' });
    expect(j).toMatchObject({ state: 'failed', error: { code: 'E_HOOK_FAILED', message: 'pre hook exited with code 4; the backup did not run', output: 'database will not flush\n' } });
    expect(await repo.listSnapshots()).toHaveLength(0);
    expect(readFileSync(marker, 'utf8')).toBe('failed\n');
  });

  it('the post hook runs after a good backup with its snapshot id; if it fails the job fails but the snapshot stays', async () => {
    const marker = path.join(root, 'post-env');
    addSource({ hooks: { pre: 'echo ready', post: `echo "$CAIRN_JOB_STATUS $CAIRN_SNAPSHOT_ID $CAIRN_SOURCE" > ${marker}; exit 1`, timeoutSeconds: 30 } });
    const j = await run('backup', { source: 'docs' });
    const [snap] = await repo.listSnapshots();
    expect(readFileSync(marker, 'utf8')).toBe(`succeeded ${snap!.id} docs\n`);
    expect(j).toMatchObject({ state: 'failed', result: { snapshotId: snap!.id }, error: { code: 'E_HOOK_FAILED', message: expect.stringMatching(/^post hook exited with code 1 \(the snapshot [0-9a-f]{12} was saved\)$/) } });
  });

  it('a cancel during the pre hook stops it and still runs the post hook, told the job was cancelled', async () => {
    const started = path.join(root, 'pre-started');
    const marker = path.join(root, 'post-status');
    addSource({ hooks: { pre: `touch ${started}; sleep 30`, post: `echo "$CAIRN_JOB_STATUS" > ${marker}` } });
    const { job } = jobs.submit('backup', { source: 'docs' }, 'api');
    await vi.waitFor(() => expect(existsSync(started)).toBe(true), { timeout: 10_000, interval: 10 });
    jobs.cancel(job.id);
    await jobs.idle();
    expect(store.get(job.id)?.state).toBe('cancelled');
    expect(readFileSync(marker, 'utf8')).toBe('cancelled\n');
    expect(await repo.listSnapshots()).toHaveLength(0);
  });

  it('a source path that does not exist fails the backup with a clear error', async () => {
    addSource({ paths: [path.join(root, 'nope')] });
    const j = await run('backup', { source: 'docs' });
    expect(j).toMatchObject({ state: 'failed', error: { code: 'E_PATH_NOT_FOUND', message: expect.stringContaining(path.join(root, 'nope')) } });
  });

  it('a restore of a repository without snapshots fails saying so', async () => {
    const j = await run('restore', { snapshot: 'latest', target: path.join(root, 'r') });
    expect(j).toMatchObject({ state: 'failed', error: { code: 'E_SNAPSHOT_NOT_FOUND' } });
  });
});

describe('restore targets', () => {
  it('a restore may write only inside the restore roots, also through symbolic links', async () => {
    const roots = [path.join(root, 'restores')];
    mkdirSync(roots[0]!);
    const outside = path.join(root, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, path.join(roots[0]!, 'evil'));
    const lookup = (n: string): SourceSpec | undefined => sources.get(n);
    const guarded = new JobManager({ store, clock: systemClock, logger: pino({ level: 'silent' }), admit: admitJob(lookup, () => roots), runners: createRunners({ engine: createLocalEngineOps(repo, { agentName: 't', program: 'cairn test' }), source: lookup, restoreOwners: false, restoreRoots: () => roots }) });
    addSource();
    const b = guarded.submit('backup', { source: 'docs' }, 'api').job;
    await guarded.idle();
    expect(store.get(b.id)?.state).toBe('succeeded');
    expect(() => guarded.submit('restore', { target: '/etc' }, 'api')).toThrow(/target: \/etc is outside the folders restores may write into/);
    expect(() => guarded.submit('restore', { target: `${roots[0]}/../outside` }, 'api')).toThrow(/outside the folders/);
    const sneaky = guarded.submit('restore', { target: path.join(roots[0]!, 'evil', 'x') }, 'api').job;
    const fine = guarded.submit('restore', { target: path.join(roots[0]!, 'ok') }, 'api').job;
    await guarded.idle();
    expect(store.get(sneaky.id)).toMatchObject({ state: 'failed', error: { code: 'E_USAGE', message: expect.stringMatching(/leads to .*outside/) } });
    expect(readdirSync(outside)).toEqual([]);
    expect(store.get(fine.id)?.state).toBe('succeeded');
    await guarded.stop('test over', 5000);
  });

  it('a restore root that does not exist yet (the default, before the first restore) takes restores', async () => {
    const roots = [path.join(root, 'state', 'restores')];
    const lookup = (n: string): SourceSpec | undefined => sources.get(n);
    const guarded = new JobManager({ store, clock: systemClock, logger: pino({ level: 'silent' }), admit: admitJob(lookup, () => roots), runners: createRunners({ engine: createLocalEngineOps(repo, { agentName: 't', program: 'cairn test' }), source: lookup, restoreOwners: false, restoreRoots: () => roots }) });
    addSource();
    guarded.submit('backup', { source: 'docs' }, 'api');
    await guarded.idle();
    const r = guarded.submit('restore', { target: path.join(roots[0]!, 'first') }, 'api').job;
    await guarded.idle();
    expect(store.get(r.id)?.state).toBe('succeeded');
    expect(readdirSync(path.join(roots[0]!, 'first')).length).toBeGreaterThan(0);
    await guarded.stop('test over', 5000);
  });
});
