import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readPackIndex } from '../../src/repo/repository.js';
import { backup } from '../../src/engine/backup.js';
import { check } from '../../src/engine/check.js';
import { BlobType } from '../../src/core/pack-format.js';
import type { PackId } from '../../src/core/ids.js';
import { newTestRepo } from '../repo/fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-check-'));
  await writeFile(path.join(dir, 'a.bin'), randomBytes(200_000));
  await writeFile(path.join(dir, 'b.txt'), 'b\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A repository in memory with one snapshot of `dir`, and its packs by blob type. */
async function setup() {
  const { repo, store } = await newTestRepo();
  await repo.loadIndex();
  const { snapshotId } = await backup(repo, { paths: [dir], program: 'test' });
  const packs = { data: [] as PackId[], tree: [] as PackId[] };
  for await (const info of store.list('data')) {
    const p = await readPackIndex(store, repo.master.dataKey, info.ref.name as PackId, info.sizeBytes);
    (p.entries[0]!.type === BlobType.tree ? packs.tree : packs.data).push(p.packId);
  }
  return { repo, store, snapshotId, packs };
}

describe('check', () => {
  it('finds a sound repository sound, with and without reading data', async () => {
    const { repo } = await setup();
    expect((await check(repo)).errors).toEqual([]);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
  });

  it('traces blobs of a missing pack to the snapshots and files that use them', async () => {
    const { repo, store, snapshotId, packs } = await setup();
    await store.delete({ kind: 'data', name: packs.data[0]! });
    const report = await check(repo);
    expect(report.errors.some((e) => e.kind === 'missing-pack')).toBe(true);
    const traced = report.errors.flatMap((e) => e.affected ?? []);
    expect(traced).toContainEqual({ snapshot: snapshotId, path: path.join(dir, 'a.bin') });
  });

  it('reports a damaged tree without --read-data, naming the snapshot', async () => {
    const { repo, store, snapshotId, packs } = await setup();
    const ref = { kind: 'data' as const, name: packs.tree[0]! };
    const bytes = Buffer.from(await store.get(ref));
    bytes[40] = bytes[40]! ^ 0xff; // inside the first sealed blob, past the 24-byte preamble
    await store.put(ref, bytes);
    const report = await check(repo);
    const damaged = report.errors.filter((e) => e.kind === 'damaged-tree');
    expect(damaged.length).toBeGreaterThan(0);
    expect(damaged[0]!.message).toContain(snapshotId.slice(0, 12));
  });
});
