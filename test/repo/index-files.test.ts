import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/backend/memory-store.js';
import { plainHash } from '../../src/core/hash.js';
import type { IndexId, PackId } from '../../src/core/ids.js';
import type { IndexFileContent } from '../../src/core/index-format.js';
import { BlobType } from '../../src/core/pack-format.js';
import { loadIndex, readIndexFile, writeIndexFile } from '../../src/repo/index-files.js';
import { expectCode } from '../core/fixtures.js';
import { namesOf } from './fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x91);
const random = (n: number): Uint8Array => randomBytes(n);

const packId = (b: number): PackId => b.toString(16).padStart(2, '0').repeat(32) as PackId;
const blobId = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const content = (pack: number, blobs: number[], supersedes: IndexId[] = []): IndexFileContent => ({
  supersedes,
  packs: [{ packId: packId(pack), salt: new Uint8Array(16).fill(pack), entries: blobs.map((b, i) => ({ type: BlobType.data, id: blobId(b), offset: 24 + 100 * i, length: 100, rawLength: 150 })) }],
});

describe('index files', () => {
  it('writes a sealed index file named by the hash of its bytes, and reads it back', async () => {
    const store = createMemoryStore();
    const c = content(1, [1, 2, 3]);
    const id = await writeIndexFile(store, DATA_KEY, c, random);
    const file = await store.get({ kind: 'index', name: id });
    expect(plainHash(file)).toBe(id);
    const back = await readIndexFile(store, DATA_KEY, id);
    expect(back.packs[0]!.packId).toBe(packId(1));
    expect(back.packs[0]!.entries.map((e) => e.id[0])).toEqual([1, 2, 3]);
  });

  it('merges every index file into one in-memory index', async () => {
    const store = createMemoryStore();
    const a = await writeIndexFile(store, DATA_KEY, content(1, [1, 2]), random);
    const b = await writeIndexFile(store, DATA_KEY, content(2, [3, 2]), random);
    const { index, files } = await loadIndex(store, DATA_KEY);
    expect(files.sort()).toEqual([a, b].sort());
    expect(index.size).toBe(3);
    expect(index.packCount).toBe(2);
    expect(index.lookup(blobId(3))?.packId).toBe(packId(2));
  });

  it('skips index files that another one supersedes', async () => {
    const store = createMemoryStore();
    const old = await writeIndexFile(store, DATA_KEY, content(1, [1, 2]), random);
    const replacement = await writeIndexFile(store, DATA_KEY, content(3, [1], [old]), random);
    const { index, files } = await loadIndex(store, DATA_KEY);
    expect(files).toEqual([replacement]);
    expect(index.has(blobId(2))).toBe(false);
    expect(index.lookup(blobId(1))?.packId).toBe(packId(3));
  });

  it('rejects a damaged index file with E_INTEGRITY, naming it', async () => {
    const store = createMemoryStore();
    const id = await writeIndexFile(store, DATA_KEY, content(1, [1]), random);
    const file = await store.get({ kind: 'index', name: id });
    file[40]! ^= 4;
    await store.put({ kind: 'index', name: id }, file);
    const err = await expectCode(loadIndex(store, DATA_KEY), 'E_INTEGRITY');
    expect(err.message).toContain(id.slice(0, 12));
  });

  it('loads an empty index from a store without index files', async () => {
    const store = createMemoryStore();
    const { index, files } = await loadIndex(store, DATA_KEY);
    expect([index.size, files]).toEqual([0, []]);
    expect(await namesOf(store, 'index')).toEqual([]);
  });
});
