import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type MemoryBlobStore, createMemoryStore } from '../../src/backend/memory-store.js';
import { IntegrityError, NotFoundError } from '../../src/core/errors.js';
import { IdHasher } from '../../src/core/hash.js';
import { type BlobId, toHex } from '../../src/core/ids.js';
import { BlobType } from '../../src/core/pack-format.js';
import { BlobReader } from '../../src/repo/blob-reader.js';
import type { BlobStore } from '../../src/repo/blob-store.js';
import { BlobWriter } from '../../src/repo/blob-writer.js';
import { CompactIndex } from '../../src/repo/compact-index.js';
import { expectCode, lowEntropyText, xorshiftBytes } from '../core/fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x71);
const HASHER = new IdHasher(new Uint8Array(32).fill(0x72));

/** A store holding one pack of `datas` (as data blobs) and `trees` (tree blobs), and its index. */
async function stored(datas: readonly Uint8Array[], trees: readonly Uint8Array[] = []): Promise<{ store: MemoryBlobStore; index: CompactIndex; reader: BlobReader }> {
  const store = createMemoryStore();
  const index = new CompactIndex();
  const w = new BlobWriter(store, index, { dataKey: DATA_KEY, compression: { codec: 'zstd', level: 1 }, packTargetBytes: 1 << 20, random: (n) => randomBytes(n) });
  for (const d of datas) await w.save(BlobType.data, HASHER.raw(d), d);
  for (const t of trees) await w.save(BlobType.tree, HASHER.raw(t), t);
  await w.flush();
  return { store, index, reader: new BlobReader(store, index, DATA_KEY, HASHER) };
}

const idOf = (d: Uint8Array): BlobId => HASHER.id(d);

describe('BlobReader', () => {
  it('loads every saved blob, compressed or raw, data or tree', async () => {
    const datas = [lowEntropyText(50_000), xorshiftBytes(20_000, 1), new Uint8Array(0), Buffer.from('tiny')];
    const trees = [Buffer.from(JSON.stringify({ nodes: [] }))];
    const { reader } = await stored(datas, trees);
    for (const d of datas) expect(Buffer.compare(await reader.load(BlobType.data, idOf(d)), d)).toBe(0);
    expect(Buffer.compare(await reader.load(BlobType.tree, idOf(trees[0]!)), trees[0]!)).toBe(0);
  });

  it('locates a blob by hex or raw id', async () => {
    const d = lowEntropyText(1000);
    const { reader, index } = await stored([d]);
    expect(reader.locate(idOf(d))).toEqual(index.lookup(HASHER.raw(d)));
    expect(reader.locate(HASHER.raw(d))).toEqual(index.lookup(HASHER.raw(d)));
  });

  it('rejects an id no index lists with NotFoundError (E_BLOB_NOT_FOUND)', async () => {
    const { reader } = await stored([lowEntropyText(100)]);
    const missing = idOf(Buffer.from('never saved'));
    expect(() => reader.locate(missing)).toThrow(NotFoundError);
    await expectCode(reader.load(BlobType.data, missing), 'E_BLOB_NOT_FOUND');
  });

  it('rejects a blob asked for as the wrong type with IntegrityError', async () => {
    const d = lowEntropyText(1000);
    const { reader } = await stored([d]);
    await expect(reader.load(BlobType.tree, idOf(d))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('rejects a blob whose bytes in the pack were altered (any byte) with IntegrityError', async () => {
    const d = xorshiftBytes(3000, 2);
    const { store, index, reader } = await stored([d]);
    const loc = index.lookup(HASHER.raw(d))!;
    const ref = { kind: 'data' as const, name: loc.packId };
    const good = await store.get(ref);
    for (let at = loc.offset; at < loc.offset + loc.length; at += 211) {
      const bad = Uint8Array.from(good);
      bad[at]! ^= 0x01;
      await store.put(ref, bad);
      await expect(reader.load(BlobType.data, idOf(d))).rejects.toBeInstanceOf(IntegrityError);
    }
    await store.put(ref, good);
    expect(Buffer.compare(await reader.load(BlobType.data, idOf(d)), d)).toBe(0);
  });

  it('rejects an index entry that points at another blob’s bytes with IntegrityError', async () => {
    const a = lowEntropyText(1000);
    const b = xorshiftBytes(1000, 3);
    const { store, index } = await stored([a, b]);
    const la = index.lookup(HASHER.raw(a))!;
    const lb = index.lookup(HASHER.raw(b))!;
    const swapped = new CompactIndex();
    swapped.addPack(la.packId, la.salt, [{ type: BlobType.data, id: HASHER.raw(a), offset: lb.offset, length: lb.length, rawLength: lb.rawLength }]);
    await expect(new BlobReader(store, swapped, DATA_KEY, HASHER).load(BlobType.data, idOf(a))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('rejects a blob that authenticates but does not hash to its id (another id key) with IntegrityError', async () => {
    const d = lowEntropyText(1000);
    const { store, index } = await stored([d]);
    const reader = new BlobReader(store, index, DATA_KEY, new IdHasher(new Uint8Array(32).fill(0x73)));
    await expect(reader.load(BlobType.data, idOf(d))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('rejects a wrong raw length in the index with IntegrityError', async () => {
    const d = lowEntropyText(1000);
    const { store, index } = await stored([d]);
    const loc = index.lookup(HASHER.raw(d))!;
    const wrong = new CompactIndex();
    wrong.addPack(loc.packId, loc.salt, [{ type: BlobType.data, id: HASHER.raw(d), offset: loc.offset, length: loc.length, rawLength: 999 }]);
    await expect(new BlobReader(store, wrong, DATA_KEY, HASHER).load(BlobType.data, idOf(d))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('keeps the store’s error code, with context, when the pack is missing', async () => {
    const d = lowEntropyText(1000);
    const { store, index, reader } = await stored([d]);
    await store.delete({ kind: 'data', name: index.lookup(HASHER.raw(d))!.packId });
    const err = await expectCode(reader.load(BlobType.data, idOf(d)), 'E_BLOB_NOT_FOUND');
    expect(err.message).toContain(toHex(HASHER.raw(d)).slice(0, 12));
  });

  it('reads a tree pack from the store once for all the tree blobs in it', async () => {
    const trees = Array.from({ length: 20 }, (_, i) => Buffer.from(JSON.stringify({ nodes: [], n: i })));
    const { store, index } = await stored([], trees);
    const gets: string[] = [];
    const counting: Pick<BlobStore, 'get' | 'location'> = {
      location: store.location,
      get: (ref, range, opts) => {
        gets.push(ref.name);
        return store.get(ref, range, opts);
      },
    };
    const reader = new BlobReader(counting, index, DATA_KEY, HASHER);
    const loaded = await Promise.all(trees.map((t) => reader.load(BlobType.tree, idOf(t))));
    for (const [i, t] of trees.entries()) expect(Buffer.compare(loaded[i]!, t)).toBe(0);
    expect(gets).toHaveLength(1);
    // dropped, the pack is read again on the next tree load (and kept again)
    reader.dropTreeCache();
    await reader.load(BlobType.tree, idOf(trees[3]!));
    await reader.load(BlobType.tree, idOf(trees[4]!));
    expect(gets).toHaveLength(2);
  });

  it('rejects a damaged tree blob with E_INTEGRITY, and a missing tree pack with E_BLOB_NOT_FOUND', async () => {
    const tree = Buffer.from(JSON.stringify({ nodes: [] }));
    const { store, index } = await stored([], [tree]);
    const loc = index.lookup(HASHER.raw(tree))!;
    const ref = { kind: 'data' as const, name: loc.packId };
    const bytes = await store.get(ref);
    bytes[loc.offset + 20]! ^= 1;
    await store.put(ref, bytes);
    await expectCode(new BlobReader(store, index, DATA_KEY, HASHER).load(BlobType.tree, idOf(tree)), 'E_INTEGRITY');
    await store.delete(ref);
    await expectCode(new BlobReader(store, index, DATA_KEY, HASHER).load(BlobType.tree, idOf(tree)), 'E_BLOB_NOT_FOUND');
  });
});
