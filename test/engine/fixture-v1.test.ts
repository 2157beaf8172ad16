import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../src/backend/local-store.js';
import { check } from '../../src/engine/check.js';
import { restore } from '../../src/engine/restore.js';
import { type Repository, openRepository } from '../../src/repo/repository.js';
import type { SnapshotId } from '../../src/core/ids.js';

/** The repository in test/fixtures/repo-v1 was written by cairn 0.1.0 (format v1) and must stay
 *  readable by every later version: a change that breaks this test breaks users' backups. */
const here = path.dirname(fileURLToPath(import.meta.url));
const fixtureDir = path.join(here, '../fixtures/repo-v1');
const expected = JSON.parse(await readFile(path.join(here, '../fixtures/repo-v1.expected.json'), 'utf8')) as {
  password: string;
  root: string;
  snapshot: SnapshotId;
  mtime: string;
  files: Record<string, string>;
  symlinks: Record<string, string>;
  dirs: Record<string, number>;
};

describe('format v1 fixture repository', () => {
  let repo: Repository;
  let target: string;

  beforeAll(async () => {
    const env = { random: (n: number) => randomBytes(n), now: () => new Date(), host: 'test', username: 'test', pid: process.pid, isAlive: () => true };
    repo = await openRepository(new LocalBlobStore(fixtureDir), { passphrase: expected.password }, env);
    await repo.loadIndex();
    target = await mkdtemp(path.join(os.tmpdir(), 'cairn-fixture-'));
  });
  afterAll(async () => {
    await rm(target, { recursive: true, force: true });
  });

  it('lists the snapshot it was written with', async () => {
    const snaps = await repo.listSnapshots();
    expect(snaps.map((s) => s.id)).toEqual([expected.snapshot]);
    expect(snaps[0]!.snapshot.paths).toEqual([expected.root]);
    expect(snaps[0]!.snapshot.tags).toEqual(['fixture']);
  });

  it('restores every file, link and directory as it was', async () => {
    const snap = await repo.loadSnapshot(expected.snapshot);
    const result = await restore(repo, snap, { target, owners: false });
    expect(result.errors).toEqual([]);
    const base = path.join(target, expected.root);
    for (const [rel, sha] of Object.entries(expected.files)) {
      const bytes = await readFile(path.join(base, rel));
      expect(createHash('sha256').update(bytes).digest('hex'), rel).toBe(sha);
      expect((await lstat(path.join(base, rel))).mtime.toISOString(), rel).toBe(expected.mtime);
    }
    for (const [rel, to] of Object.entries(expected.symlinks)) expect(await readlink(path.join(base, rel))).toBe(to);
    for (const [rel, mode] of Object.entries(expected.dirs)) expect((await lstat(path.join(base, rel))).mode & 0o7777, rel).toBe(mode);
    const a = await lstat(path.join(base, 'docs/hello.txt'));
    const b = await lstat(path.join(base, 'docs/hello-hard.txt'));
    expect(a.ino).toBe(b.ino);
  });

  it('passes check --read-data', async () => {
    const report = await check(repo, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.packsRead).toBe(report.packs);
    expect(report.snapshots).toBe(1);
  });
});
