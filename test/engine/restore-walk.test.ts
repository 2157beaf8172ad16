// The restore walk: an entry it cannot make is reported and skipped while the rest is restored,
// and an abort while it walks stops the restore. (A device node is restored only as root: a
// restore without owners fails it at once, without waiting on anything.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/core/snapshot-format.js';
import { backup } from '../../src/engine/backup.js';
import { NO_PROGRESS, type ProgressSink } from '../../src/engine/progress.js';
import { restore } from '../../src/engine/restore.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

const IS_ROOT = process.getuid?.() === 0;

let root: string;
let src: string;
let repo: Repository;
let snapshot: Snapshot;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-restore-walk-'));
  src = path.join(root, 'src');
  mkdirSync(path.join(src, 'd', 'e'), { recursive: true });
  writeFileSync(path.join(src, 'a.txt'), 'a\n');
  writeFileSync(path.join(src, 'empty'), '');
  writeFileSync(path.join(src, 'd', 'b.txt'), 'b\n');
  writeFileSync(path.join(src, 'd', 'e', 'c.txt'), 'c\n');
  if (!IS_ROOT) return;
  execFileSync('mknod', [path.join(src, 'null-copy'), 'c', '1', '3']);
  ({ repo } = await newTestRepo());
  ({ snapshot } = await backup(repo, { paths: [src], program: 'test' }));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.skipIf(!IS_ROOT)('restore walk', () => {
  it('reports an entry it cannot make, and restores the rest', async () => {
    const target = path.join(root, 'rest');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([{ path: path.join(src, 'null-copy'), message: expect.stringContaining('only as root') }]);
    const at = (rel: string): string => path.join(target, src, rel);
    expect(readFileSync(at('a.txt'), 'utf8')).toBe('a\n');
    expect(readFileSync(at('empty'), 'utf8')).toBe('');
    expect(readFileSync(at('d/b.txt'), 'utf8')).toBe('b\n');
    expect(readFileSync(at('d/e/c.txt'), 'utf8')).toBe('c\n');
    expect(existsSync(at('null-copy'))).toBe(false);
  });

  it('stops when aborted while it walks, with the abort as its error', async () => {
    // the device node's failure comes before the folders are walked: abort there
    const stop = new AbortController();
    const progress: ProgressSink = { ...NO_PROGRESS, error: () => stop.abort(new Error('stopped mid-walk')) };
    const target = path.join(root, 'aborted');
    await expect(restore(repo, snapshot, { target, owners: false, progress, signal: stop.signal })).rejects.toThrow('stopped mid-walk');
    expect(existsSync(path.join(target, src, 'd', 'e', 'c.txt'))).toBe(false);
  });
});
