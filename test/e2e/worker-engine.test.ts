// The engine worker as the agent runs it (from dist/: a worker thread loads built JavaScript):
// errors keep their codes across the thread, a cancel is a cancel, and a crashed worker is
// replaced by the next operation.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineOps } from '../../src/jobs/engine-ops.js';
import { NO_PROGRESS } from '../../src/engine/progress.js';
import { PASSWORD, repoEnv, runCairn } from './helpers/cli.js';

const dist = path.join(import.meta.dirname, '../../dist/agent/worker-engine.js');
const { WorkerEngine } = (await import(dist)) as { WorkerEngine: new (init: object, log: object, onCrash?: () => void) => EngineOps & { close(): Promise<void> } };
const root = mkdtempSync(path.join(os.tmpdir(), 'cairn-worker-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec = { source: { name: 's', paths: [root], excludes: [], oneFileSystem: false, tags: [] } };

describe('WorkerEngine', () => {
  it('a CairnError keeps its code across the thread, and a cancel before the work is a cancel', async () => {
    const engine = new WorkerEngine({ repoPath: path.join(root, 'no-repo'), credential: { passphrase: 'x' }, agentName: 't', program: 'cairn test' }, pino({ level: 'silent' }));
    try {
      await expect(engine.backup(spec, { signal: new AbortController().signal, progress: NO_PROGRESS })).rejects.toMatchObject({ code: 'E_REPO_NOT_FOUND' });
      const ac = new AbortController();
      const run = engine.backup(spec, { signal: ac.signal, progress: NO_PROGRESS });
      ac.abort(new Error('stop'));
      await expect(run).rejects.toMatchObject({ code: expect.stringMatching(/^E_(CANCELLED|REPO_NOT_FOUND)$/) });
      const aborted = new AbortController();
      aborted.abort(new Error('already'));
      await expect(engine.check({ readData: false }, { signal: aborted.signal, progress: NO_PROGRESS })).rejects.toThrow('already');
    } finally {
      await engine.close();
    }
  });

  it('backs up and restores through the worker, whose restore creates files on threads of its own', async () => {
    const repo = path.join(root, 'repo');
    const src = path.join(root, 'src');
    const target = path.join(root, 'restored');
    const files: Record<string, Buffer> = { 'big.bin': randomBytes(3 * 1024 * 1024), empty: Buffer.alloc(0) };
    for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.txt`] = Buffer.from(`file ${i}\n`.repeat(i * 50));
    for (const [rel, data] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      writeFileSync(path.join(src, rel), data);
    }
    const init = await runCairn(['init'], { env: repoEnv(repo) });
    expect(init.code, init.stderr).toBe(0);
    const engine = new WorkerEngine({ repoPath: repo, credential: { passphrase: PASSWORD }, agentName: 't', program: 'cairn test' }, pino({ level: 'silent' }));
    const ctx = { signal: new AbortController().signal, progress: NO_PROGRESS };
    try {
      await engine.backup({ source: { name: 'src', paths: [src], excludes: [], oneFileSystem: false, tags: [] } }, ctx);
      const r = await engine.restore({ snapshot: 'latest', target, overwrite: false, owners: false }, ctx);
      expect(r.errors).toEqual([]);
      expect(r.files).toBe(Object.keys(files).length);
      for (const [rel, data] of Object.entries(files)) expect(readFileSync(path.join(target, src, rel)).equals(data), rel).toBe(true);
    } finally {
      await engine.close();
    }
  });
});
