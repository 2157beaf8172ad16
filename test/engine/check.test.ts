import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readPackIndex } from '../../src/repo/repository.js';
import { backup } from '../../src/engine/backup.js';
import { check } from '../../src/engine/check.js';
import { BlobType } from '../../src/core/pack-format.js';
import type { BlobId, PackId } from '../../src/core/ids.js';
import { type TreeNode, decodeTree, encodeTree } from '../../src/core/tree.js';
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

  it('reports a file whose content does not add up to its size, naming the snapshot and path', async () => {
    // as a backup wrote one when it read a small file's size after handing the file over
    const { repo } = await setup();
    const { snapshot } = (await repo.listSnapshots())[0]!;
    let tree = snapshot.tree;
    let file: TreeNode | undefined;
    for (const name of [...dir.split('/').slice(1), 'a.bin']) {
      const node = decodeTree(await repo.reader.load(BlobType.tree, tree)).nodes.find((n) => n.name === name)!;
      if (node.type === 'dir') tree = node.subtree!;
      else file = node;
    }
    const write = async (nodes: TreeNode[]): Promise<BlobId> => {
      const bytes = encodeTree({ nodes });
      const id = repo.hasher.id(bytes);
      const writer = repo.newWriter();
      await writer.save(BlobType.tree, repo.hasher.raw(bytes), bytes);
      await writer.flush();
      return id;
    };
    const sound = await write([{ ...file!, name: 'same.bin' }, { type: 'file', name: 'holes.bin', mode: 0o100644, uid: 0, gid: 0, mtimeNs: '0', ctimeNs: '0', size: 4096 + file!.size, inode: '1', devId: '1', nlink: 1, content: [4096, ...file!.content!] } as TreeNode]);
    const wrong = await write([{ ...file!, name: 'wrong.bin', size: 0 }]);
    const soundId = await repo.saveSnapshot({ ...snapshot, tree: sound });
    const wrongId = await repo.saveSnapshot({ ...snapshot, tree: wrong });
    const report = await check(repo);
    const found = report.errors.filter((e) => e.kind === 'inconsistent-file');
    expect(found).toHaveLength(1);
    expect(found[0]!.affected).toEqual([{ snapshot: wrongId, path: '/wrong.bin' }]);
    expect(found[0]!.message).toContain(`adds up to ${file!.size} bytes, its entry says 0`);
    expect(report.errors.flatMap((e) => e.affected ?? []).some((a) => a.snapshot === soundId)).toBe(false);
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
