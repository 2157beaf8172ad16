// A no-change run reuses the parent's nodes and trees as they are (no new node, no tree encoded or
// hashed); any change of metadata or content anywhere gives new trees along its path.
import { chmodSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BackupResult, backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

let root: string;
let src: string;
let repo: Repository;
let first: BackupResult;
const at = (rel: string): string => path.join(src, rel);
const run = (): Promise<BackupResult> => backup(repo, { paths: [src], program: 'test' });

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-reuse-'));
  src = path.join(root, 'src');
  mkdirSync(at('a/b'), { recursive: true });
  mkdirSync(at('c'));
  writeFileSync(at('a/b/one.txt'), 'one\n');
  writeFileSync(at('a/two.txt'), 'two\n');
  writeFileSync(at('c/three.txt'), 'three\n');
  ({ repo } = await newTestRepo());
  first = await run();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('no-change reuse', () => {
  it('a run with nothing changed keeps the parent root tree and adds nothing', async () => {
    const again = await run();
    expect(again.parent).toBe(first.snapshotId);
    expect(again.snapshot.tree).toBe(first.snapshot.tree);
    expect(again.snapshot.summary).toMatchObject({ filesUnmodified: 3, filesNew: 0, bytesRead: 0, blobsAdded: 0 });
  });

  it.each([
    ['a mode', () => chmodSync(at('a/b/one.txt'), 0o600)],
    ['a directory mode', () => chmodSync(at('c'), 0o700)],
    ['a modification time only', () => utimesSync(at('a/two.txt'), new Date(2020, 1, 1), new Date(2020, 1, 1))],
    ['content', () => writeFileSync(at('c/three.txt'), 'THREE\n')],
  ])('a change of %s gives a new root tree that restores with the change', async (_what, change) => {
    change();
    const again = await run();
    expect(again.snapshot.tree).not.toBe(first.snapshot.tree);
    const target = path.join(root, 'restored');
    await restore(repo, again.snapshot, { target, owners: false });
    for (const rel of ['a/b/one.txt', 'a/two.txt', 'c/three.txt']) {
      const a = statSync(at(rel));
      const b = statSync(path.join(target, at(rel)));
      // Node sets times with microsecond precision at best
      expect([b.mode, Math.round(b.mtimeMs), readFileSync(path.join(target, at(rel)), 'utf8')]).toEqual([a.mode, Math.round(a.mtimeMs), readFileSync(at(rel), 'utf8')]);
    }
    expect(statSync(path.join(target, at('c'))).mode).toBe(statSync(at('c')).mode);
  });
});
