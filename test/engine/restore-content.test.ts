// The restore plan (columns of numbers keyed by index rows): every place a blob goes gets it,
// and a file whose blob no index lists is reported and left out while the rest is restored.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { BlobType } from '../../src/core/pack-format.js';
import type { TreeNode } from '../../src/core/tree.js';
import { NO_PROGRESS } from '../../src/engine/progress.js';
import { ContentRestorer, own } from '../../src/engine/restore-content.js';
import { CompactIndex } from '../../src/repo/compact-index.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

let root: string;
let src: string;
let repo: Repository;
const at = (rel: string): string => path.join(src, rel);
const block = randomBytes(700 * 1024);
const files: Record<string, Buffer> = {
  'big.bin': randomBytes(2_500_000),
  'repeats.bin': Buffer.concat(Array.from({ length: 6 }, () => block)),
  'one.txt': Buffer.from('the same small content\n'),
  'd/same-as-one.txt': Buffer.from('the same small content\n'),
  'd/e/again.txt': Buffer.from('the same small content\n'),
  'empty': Buffer.alloc(0),
  'd/unique.txt': Buffer.from('only here\n'),
};

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-restore-plan-'));
  src = path.join(root, 'src');
  mkdirSync(at('d/e'), { recursive: true });
  for (const [rel, data] of Object.entries(files)) writeFileSync(at(rel), data);
  ({ repo } = await newTestRepo());
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('restore plan', () => {
  it('keeps paths in buffers of their own, not in slices of the shared pool that keep its 8 KiB slabs', () => {
    const small = Buffer.from('/restore/target/some/folder/');
    expect(small.buffer.byteLength).toBeGreaterThan(small.length); // (a pool slice)
    const kept = own(small);
    expect(kept.equals(small)).toBe(true);
    expect(kept.buffer.byteLength).toBe(small.length);
  });


  it('writes every blob to every file and offset that holds it', async () => {
    const { snapshot } = await backup(repo, { paths: [src], program: 'test' });
    const target = path.join(root, 'restored');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([]);
    expect(result.files).toBe(Object.keys(files).length);
    for (const [rel, data] of Object.entries(files)) {
      const back = path.join(target, at(rel));
      expect(readFileSync(back).equals(data), rel).toBe(true);
      expect(statSync(back).mode).toBe(statSync(at(rel)).mode);
    }
  });

  it('reads a pack in spans of at most 4 MiB (or one blob), not whole', async () => {
    ({ repo } = await newTestRepo({ init: { config: { pack: { targetSizeBytes: 16 * 1024 * 1024 } } } }));
    const many = Array.from({ length: 12 }, () => randomBytes(1024 * 1024));
    mkdirSync(at('many'));
    many.forEach((data, i) => writeFileSync(at(`many/${i}.bin`), data));
    const { snapshot } = await backup(repo, { paths: [at('many')], program: 'test' });
    const reads: number[] = [];
    const get = repo.store.get.bind(repo.store);
    repo.store.get = (ref, range, opts) => {
      if (ref.kind === 'data' && range) reads.push(range.length);
      return get(ref, range, opts);
    };
    const target = path.join(root, 'restored-many');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([]);
    many.forEach((data, i) => expect(readFileSync(path.join(target, at(`many/${i}.bin`))).equals(data)).toBe(true));
    expect(reads.reduce((a, b) => a + b, 0)).toBeGreaterThan(12 * 1024 * 1024);
    expect(Math.max(...reads)).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('reports a file whose blob no index lists, and restores the others', async () => {
    const { snapshot } = await backup(repo, { paths: [src], program: 'test' });
    // an index without the blob of d/unique.txt (as if its index file were lost)
    const missing = Buffer.from(repo.hasher.raw(files['d/unique.txt']!)).toString('hex');
    const partial = new CompactIndex();
    for (const e of repo.index.entries()) {
      if (e.id === missing) continue;
      partial.addPack(e.packId, e.salt, [{ type: e.type, id: Buffer.from(e.id, 'hex'), offset: e.offset, length: e.length, rawLength: e.rawLength }]);
    }
    repo.index = partial;
    const target = path.join(root, 'restored');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([{ path: at('d/unique.txt'), message: expect.stringContaining('is not in the index') }]);
    expect(existsSync(path.join(target, at('d/unique.txt')))).toBe(false);
    for (const [rel, data] of Object.entries(files)) {
      if (rel === 'd/unique.txt') continue;
      expect(readFileSync(path.join(target, at(rel))).equals(data), rel).toBe(true);
    }
  });

  it('reports every file of a blob that does not verify, written whole or in parts, removes them, and restores the others', async () => {
    const { snapshot } = await backup(repo, { paths: [src], program: 'test' });
    // damage a blob in the middle of big.bin (a file of several blobs) and the blob of the three
    // small files that hold the same text (each written whole, in three folders)
    const entries = [...repo.index.entries()].filter((e) => e.type === BlobType.data);
    const holds = async (e: (typeof entries)[number], data: Buffer): Promise<boolean> => data.includes(Buffer.from(await repo.reader.load(BlobType.data, e.id)));
    const inBig: typeof entries = [];
    for (const e of entries) if (await holds(e, files['big.bin']!)) inBig.push(e);
    expect(inBig.length).toBeGreaterThan(1);
    const small = entries.find((e) => e.rawLength === files['one.txt']!.length)!;
    const damaged = [inBig.sort((x, y) => x.offset - y.offset)[1]!, small];
    const store = repo.store;
    const get = store.get.bind(store);
    store.get = async (ref, range, opts) => {
      const bytes = Buffer.from(await get(ref, range, opts));
      const from = range?.offset ?? 0;
      for (const e of damaged) {
        const at = e.offset + 20 - from;
        if (ref.name === e.packId && at >= 0 && at < bytes.length) bytes[at]! ^= 0x10;
      }
      return bytes;
    };
    const target = path.join(root, 'restored');
    const result = await restore(repo, snapshot, { target, owners: false });
    const bad = ['big.bin', 'one.txt', 'd/same-as-one.txt', 'd/e/again.txt'];
    expect(result.errors.map((e) => e.path).sort()).toEqual(bad.map(at).sort());
    for (const e of result.errors) expect(e.message).toMatch(/^blob [0-9a-f]{12} in pack [0-9a-f]{12}: authentication failed/);
    for (const rel of bad) expect(existsSync(path.join(target, at(rel))), rel).toBe(false);
    for (const [rel, data] of Object.entries(files)) {
      if (bad.includes(rel)) continue;
      expect(readFileSync(path.join(target, at(rel))).equals(data), rel).toBe(true);
    }
  });

  it('restores large files whose later parts are spread over the workers: identical, finished after every part, and removed when a late part does not verify', async () => {
    // small chunks: a span read holds ~30 of a file's blobs, so its parts are handed over
    // while others of the same file are being written
    ({ repo } = await newTestRepo({ init: { config: { chunker: { minSizeBytes: 16 * 1024, avgSizeBytes: 64 * 1024, maxSizeBytes: 256 * 1024 } } } }));
    const huge = randomBytes(12 * 1024 * 1024);
    mkdirSync(at('huge'));
    writeFileSync(at('huge/a.bin'), huge);
    writeFileSync(at('huge/b.bin'), Buffer.from(huge.subarray(0, 9 * 1024 * 1024)).reverse());
    const { snapshot } = await backup(repo, { paths: [at('huge')], program: 'test' });
    // each ranged read waits 15 ms: the first part of each file is written (and has made its
    // file) long before the next span's parts are handed over, so those are spread (were one
    // not, it would go to the file's first worker and be restored all the same)
    const store = repo.store;
    const get = store.get.bind(store);
    const damaged: { blob?: { packId: string; offset: number } } = {};
    store.get = async (ref, range, opts) => {
      if (range) await new Promise((resolve) => setTimeout(resolve, 15));
      const bytes = Buffer.from(await get(ref, range, opts));
      const from = range?.offset ?? 0;
      const d = damaged.blob;
      if (d && ref.name === d.packId && d.offset - from >= 0 && d.offset - from < bytes.length) bytes[d.offset - from]! ^= 0x10;
      return bytes;
    };
    const target = path.join(root, 'restored-huge');
    const ok = await restore(repo, snapshot, { target, owners: false });
    expect(ok.errors).toEqual([]);
    expect(ok.files).toBe(2);
    for (const name of ['a.bin', 'b.bin']) {
      const back = path.join(target, at(`huge/${name}`));
      expect(readFileSync(back).equals(readFileSync(at(`huge/${name}`))), name).toBe(true);
      expect(statSync(back).mode).toBe(statSync(at(`huge/${name}`)).mode);
      expect(statSync(back).mtimeMs).toBeCloseTo(statSync(at(`huge/${name}`)).mtimeMs, 2);
    }
    // a blob near the end of a.bin does not verify: a.bin is reported and removed, b.bin restored
    const inA = [...repo.index.entries()].filter((e) => e.type === BlobType.data && e.rawLength > 0);
    const holdsA: typeof inA = [];
    for (const e of inA) if (huge.includes(Buffer.from(await repo.reader.load(BlobType.data, e.id)))) holdsA.push(e);
    const lateA = holdsA.sort((x, y) => x.offset - y.offset).at(-2)!;
    damaged.blob = { packId: lateA.packId, offset: lateA.offset + 20 };
    const target2 = path.join(root, 'restored-huge-2');
    const bad = await restore(repo, snapshot, { target: target2, owners: false });
    expect(bad.errors.map((e) => e.path)).toEqual([at('huge/a.bin')]);
    expect(existsSync(path.join(target2, at('huge/a.bin')))).toBe(false);
    expect(readFileSync(path.join(target2, at('huge/b.bin'))).equals(readFileSync(at('huge/b.bin')))).toBe(true);
  }, 30_000);

  it('writes a blob repeated within a file, and shared with another file of several blobs', async () => {
    const a = randomBytes(3000);
    const c = randomBytes(5000);
    const w = repo.newWriter({ sealWorkers: 0 });
    for (const d of [a, c]) await w.save(BlobType.data, repo.hasher.raw(d), d);
    await w.flush();
    await w.close();
    const node = (name: string, content: TreeNode['content'], size: number): TreeNode => ({
      name, type: 'file', mode: 0o100640, uid: 0, gid: 0, mtimeNs: '1700000000123456000', ctimeNs: '0', size, inode: '0', devId: '0', nlink: 1, content,
    });
    const [ida, idc] = [repo.hasher.id(a), repo.hasher.id(c)];
    const target = path.join(root, 'plan');
    mkdirSync(target);
    const errors: string[] = [];
    const r = new ContentRestorer(repo, NO_PROGRESS, { owners: false }, Buffer.from(target), (p, err) => errors.push(`${p}: ${String(err)}`));
    // a, a, a hole of 5 bytes, a; and a second file a, c
    await r.add(Buffer.from(path.join(target, 'f1')), node('f1', [ida, ida, 5, ida], 3 * 3000 + 5));
    await r.add(Buffer.from(path.join(target, 'f2')), node('f2', [ida, idc], 8000));
    await r.run({});
    expect(errors).toEqual([]);
    expect(readFileSync(path.join(target, 'f1')).equals(Buffer.concat([a, a, Buffer.alloc(5), a]))).toBe(true);
    expect(readFileSync(path.join(target, 'f2')).equals(Buffer.concat([a, c]))).toBe(true);
    expect(statSync(path.join(target, 'f1')).mode & 0o7777).toBe(0o640);
    expect(statSync(path.join(target, 'f2')).mtimeMs).toBe(1700000000123.456);
    expect([r.files, r.bytes]).toEqual([2, 4 * 3000 + 5000]);
  });

  it('removes the files it had started when it is aborted, and keeps those it finished', async () => {
    // three blobs in three packs (read one at a time), and a file of all three
    const datas = [randomBytes(4000), randomBytes(4000), randomBytes(4000)];
    for (const d of datas) {
      const w = repo.newWriter({ sealWorkers: 0 });
      await w.save(BlobType.data, repo.hasher.raw(d), d);
      await w.flush();
      await w.close();
    }
    const ids = datas.map((d) => repo.hasher.id(d));
    const node = (name: string, content: TreeNode['content'], size: number): TreeNode => ({
      name, type: 'file', mode: 0o100644, uid: 0, gid: 0, mtimeNs: '0', ctimeNs: '0', size, inode: '0', devId: '0', nlink: 1, content,
    });
    const target = path.join(root, 'aborted');
    mkdirSync(target);
    const stop = new AbortController();
    // the read of the second pack aborts the restore: the first part of 'whole' was handed to a
    // file writer, which created the file; the rest never comes
    const store = repo.store;
    const get = store.get.bind(store);
    let reads = 0;
    store.get = (...args) => {
      if (++reads === 2) stop.abort(new Error('stop'));
      return get(...args);
    };
    const r = new ContentRestorer(repo, NO_PROGRESS, { owners: false }, Buffer.from(target), () => undefined);
    await r.add(Buffer.from(path.join(target, 'whole')), node('whole', ids, 12000));
    await r.add(Buffer.from(path.join(target, 'first')), node('first', [ids[0]!], 4000));
    await expect(r.run({ signal: stop.signal })).rejects.toThrow('stop');
    expect(reads).toBe(2);
    expect(existsSync(path.join(target, 'whole'))).toBe(false);
    expect(readFileSync(path.join(target, 'first')).equals(datas[0]!)).toBe(true);
  });
});

