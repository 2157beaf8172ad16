import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../src/backend/local-store.js';
import { createMemoryStore } from '../../src/backend/memory-store.js';
import { CairnError } from '../../src/core/errors.js';
import { IdHasher, plainHash } from '../../src/core/hash.js';
import type { IndexId, PackId } from '../../src/core/ids.js';
import { BlobType, headerRange } from '../../src/core/pack-format.js';
import type { BlobRef, BlobStore, PutOptions } from '../../src/repo/blob-store.js';
import { BlobWriter as RealBlobWriter, type BlobWriterOptions } from '../../src/repo/blob-writer.js';
import { CompactIndex } from '../../src/repo/compact-index.js';
import { BlobReader } from '../../src/repo/blob-reader.js';
import { PACK_SLACK_BYTES } from '../../src/repo/pack-writer.js';
import { readIndexFile } from '../../src/repo/index-files.js';
import { readPackIndex } from '../../src/repo/repository.js';
import { lowEntropyText, xorshiftBytes } from '../core/fixtures.js';
import { namesOf } from './fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x61);
const HASHER = new IdHasher(new Uint8Array(32).fill(0x62));
const BASE_OPTS: BlobWriterOptions = { dataKey: DATA_KEY, compression: { codec: 'zstd', level: 1 }, packTargetBytes: 1024 * 1024, random: (n) => randomBytes(n) };

/** `count` distinct incompressible blobs of `sizeBytes`. */
const blobs = (count: number, sizeBytes: number, seed = 1): Uint8Array[] => Array.from({ length: count }, (_, i) => xorshiftBytes(sizeBytes, seed * 100_000 + i + 1));

// The same contract with data blobs sealed on this thread and on seal workers (built from dist/).
// On a memory store packs are built in memory; on a local store, as staged files it renames.
describe.each([
  [0, 'memory'],
  [2, 'memory'],
  [0, 'local'],
  [2, 'local'],
] as const)('BlobWriter (seal workers: %i, %s store)', (sealWorkers, storeKind) => {
  const OPTS: BlobWriterOptions = { ...BASE_OPTS, sealWorkers };
  const open: BlobWriter[] = [];
  const roots: string[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((w) => w.close()));
    // every staged pack was stored or removed, whatever became of the writer
    for (const root of roots.splice(0)) {
      expect(readdirSync(root).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
      rmSync(root, { recursive: true, force: true });
    }
  });
  const newStore = (): BlobStore => {
    if (storeKind === 'memory') return createMemoryStore();
    const root = mkdtempSync(join(tmpdir(), 'cairn-writer-'));
    roots.push(root);
    return new LocalBlobStore(root);
  };
  /** A writer closed after the test (it may own worker threads). */
  class BlobWriter extends RealBlobWriter {
    constructor(...args: ConstructorParameters<typeof RealBlobWriter>) {
      super(...args);
      open.push(this);
    }
  }

  it('writes several packs of about the target size, then one index file listing them all on flush', async () => {
    const store = newStore();
    const index = new CompactIndex();
    const w = new BlobWriter(store, index, OPTS);
    const datas = blobs(40, 100_000);
    for (const d of datas) expect(await w.save(BlobType.data, HASHER.raw(d), d)).toBe(true);
    const written = await w.flush();
    const packs = await namesOf(store, 'data');
    expect(packs.length).toBe(4);
    expect(w.stats).toMatchObject({ blobsAdded: 40, packsWritten: 4 });
    expect(w.stats.bytesAdded).toBe(40 * (1 + 100_000 + 28));
    expect(written).toHaveLength(1);
    expect(await namesOf(store, 'index')).toEqual(written);
    const content = await readIndexFile(store, DATA_KEY, written[0]!);
    expect(content.supersedes).toEqual([]);
    expect(content.packs.map((p) => p.packId).sort()).toEqual(packs);
    expect(content.packs.reduce((n, p) => n + p.entries.length, 0)).toBe(40);
    for (const d of datas) expect(index.has(HASHER.raw(d))).toBe(true);
  });

  it('closes a pack before a blob that would take it past target + slack; every blob reads back', async () => {
    const store = newStore();
    const index = new CompactIndex();
    const w = new BlobWriter(store, index, OPTS);
    // 0.9 MiB (under the 1 MiB target), then a blob that would take that pack past 1 + 9 MiB
    const datas = [xorshiftBytes(900 * 1024, 31), xorshiftBytes(PACK_SLACK_BYTES + 200 * 1024, 32), xorshiftBytes(3 << 20, 33)];
    for (const d of datas) await w.save(BlobType.data, HASHER.raw(d), d);
    await w.flush();
    const packs = await namesOf(store, 'data');
    expect(packs).toHaveLength(3);
    const sizes = await Promise.all(packs.map(async (name) => (await store.get({ kind: 'data', name })).length));
    for (const size of sizes) expect(size).toBeLessThanOrEqual(OPTS.packTargetBytes + PACK_SLACK_BYTES);
    // the first blob's pack holds it alone: it was closed under its target
    const first = index.lookup(HASHER.raw(datas[0]!))!;
    expect((await store.get({ kind: 'data', name: first.packId })).length).toBeLessThan(OPTS.packTargetBytes);
    const reader = new BlobReader(store, index, DATA_KEY, HASHER);
    for (const d of datas) expect(Buffer.from(await reader.load(BlobType.data, HASHER.id(d))).equals(Buffer.from(d))).toBe(true);
  });

  it('names each pack by the hash of its bytes, and its header agrees with the index file', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    for (const d of blobs(15, 100_000, 2)) await w.save(BlobType.data, HASHER.raw(d), d);
    const [indexId] = await w.flush();
    const content = await readIndexFile(store, DATA_KEY, indexId!);
    for (const p of content.packs) {
      const bytes = await store.get({ kind: 'data', name: p.packId });
      expect(plainHash(bytes)).toBe(p.packId);
      const fromPack = await readPackIndex(store, DATA_KEY, p.packId, bytes.length);
      expect(Buffer.from(fromPack.salt).toString('hex')).toBe(Buffer.from(p.salt).toString('hex'));
      expect(fromPack.entries.map((e) => [Buffer.from(e.id).toString('hex'), e.offset, e.length, e.rawLength])).toEqual(p.entries.map((e) => [Buffer.from(e.id).toString('hex'), e.offset, e.length, e.rawLength]));
      expect(headerRange(bytes.subarray(bytes.length - 8), bytes.length).offset).toBe(24 + p.entries.reduce((n, e) => n + e.length, 0));
    }
  });

  it('adds a blob once: a second save of the same id returns false, in flight or indexed', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    const d = lowEntropyText(10_000);
    const id = HASHER.raw(d);
    expect(w.known(id)).toBe(false);
    expect(await w.save(BlobType.data, id, d)).toBe(true);
    expect(w.known(id)).toBe(true);
    expect(await w.save(BlobType.data, id, d)).toBe(false);
    await w.flush();
    expect(await w.save(BlobType.data, id, d)).toBe(false);
    await w.flush();
    expect(w.stats.blobsAdded).toBe(1);
    expect(await namesOf(store, 'data')).toHaveLength(1);
  });

  it('counts every blob of concurrent saves in its stats', async () => {
    const w = new BlobWriter(newStore(), new CompactIndex(), OPTS);
    const datas = blobs(20, 50_000, 9);
    const added = await Promise.all(datas.map((d) => w.save(BlobType.data, HASHER.raw(d), d)));
    expect(added.every(Boolean)).toBe(true);
    expect(w.stats).toMatchObject({ blobsAdded: 20, bytesAdded: 20 * (1 + 50_000 + 28) });
  });

  it('deduplicates concurrent saves of the same blob', async () => {
    const w = new BlobWriter(newStore(), new CompactIndex(), OPTS);
    const d = lowEntropyText(10_000);
    const results = await Promise.all([1, 2, 3].map(() => w.save(BlobType.data, HASHER.raw(d), d)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('skips blobs the index already has', async () => {
    const store = newStore();
    const index = new CompactIndex();
    const d = lowEntropyText(1000);
    index.addPack('ab'.repeat(32) as never, new Uint8Array(16), [{ type: BlobType.data, id: HASHER.raw(d), offset: 24, length: 10, rawLength: 1000 }]);
    const w = new BlobWriter(store, index, OPTS);
    expect(await w.save(BlobType.data, HASHER.raw(d), d)).toBe(false);
    expect(await w.flush()).toEqual([]);
    expect(await namesOf(store, 'data')).toEqual([]);
  });

  it('keeps data and tree blobs in separate packs', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    const data = lowEntropyText(5000);
    const tree = Buffer.from(JSON.stringify({ nodes: [] }));
    await w.save(BlobType.data, HASHER.raw(data), data);
    await w.save(BlobType.tree, HASHER.raw(tree), tree);
    const [indexId] = await w.flush();
    const content = await readIndexFile(store, DATA_KEY, indexId!);
    expect(content.packs).toHaveLength(2);
    expect(content.packs.map((p) => p.entries.map((e) => e.type)).sort()).toEqual([[BlobType.data], [BlobType.tree]]);
  });

  it('writes an index file every `indexEveryPacks` packs, each pack listed once', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), { ...OPTS, indexEveryPacks: 2 });
    for (const d of blobs(60, 100_000, 3)) await w.save(BlobType.data, HASHER.raw(d), d);
    const written = await w.flush();
    const packs = await namesOf(store, 'data');
    expect(packs).toHaveLength(6);
    expect(written.length).toBeGreaterThanOrEqual(3);
    expect(await namesOf(store, 'index')).toEqual([...written].sort());
    const listed: string[] = [];
    for (const id of written) for (const p of (await readIndexFile(store, DATA_KEY, id)).packs) listed.push(p.packId);
    expect(listed.sort()).toEqual(packs);
  });

  it('knows every blob it saved, through upload and index writes, and stores none twice', async () => {
    const store = newStore();
    const index = new CompactIndex();
    const w = new BlobWriter(store, index, { ...OPTS, indexEveryPacks: 2 });
    const datas = blobs(60, 100_000, 4);
    const ids = datas.map((d) => HASHER.raw(d));
    for (const [i, d] of datas.entries()) {
      expect(await w.save(BlobType.data, ids[i]!, d)).toBe(true);
      // saved blobs are known wherever they are: in flight, in a stored pack, or indexed
      for (const id of ids.slice(0, i + 1)) expect(w.known(id)).toBe(true);
      if (i % 7 === 6) for (const [j, e] of datas.slice(0, i + 1).entries()) expect(await w.save(BlobType.data, ids[j]!, e)).toBe(false);
    }
    const written = await w.flush();
    expect(w.stats.blobsAdded).toBe(60);
    expect(index.size).toBe(60);
    // all in the index now: the writer keeps none of its own
    expect(w.pendingBlobs).toBe(0);
    const listed: string[] = [];
    for (const id of written) for (const p of (await readIndexFile(store, DATA_KEY, id)).packs) for (const e of p.entries) listed.push(Buffer.from(e.id).toString('hex'));
    expect(listed.sort()).toEqual(ids.map((id) => Buffer.from(id).toString('hex')).sort());
  });

  it('keeps knowing the blobs of packs whose index write is queued behind a slower one', async () => {
    const store = createMemoryStore();
    // (Promise.withResolvers is Node 22's)
    const deferred = (): { promise: Promise<void>; resolve: () => void } => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    };
    const gates = [deferred(), deferred(), deferred()];
    const threePacksStored = deferred();
    const secondIndexWriteStarted = deferred();
    let indexWrites = 0;
    let packs = 0;
    const put = store.put.bind(store);
    store.put = async (ref, bytes, opts) => {
      if (ref.kind === 'index') {
        // index writes are chained: the second starts once the first has finished, its
        // bookkeeping included
        if (++indexWrites === 2) secondIndexWriteStarted.resolve();
        await gates[indexWrites - 1]!.promise;
      }
      await put(ref, bytes, opts);
      if (ref.kind === 'data' && ++packs === 3) threePacksStored.resolve();
    };
    const index = new CompactIndex();
    const w = new BlobWriter(store, index, { ...OPTS, indexEveryPacks: 1 });
    // each blob fills a pack (target 1 MiB), so each pack is stored and queues an index write
    const datas = blobs(3, 1100 * 1024, 11);
    const ids = datas.map((d) => HASHER.raw(d));
    for (const [i, d] of datas.entries()) await w.save(BlobType.data, ids[i]!, d);
    // the first index write waits at its gate while the other two packs are stored and queue theirs
    await threePacksStored.promise;
    gates[0]!.resolve();
    await secondIndexWriteStarted.promise;
    // the first pack is in the shared index; the other two are known to the writer alone
    expect(index.size).toBe(1);
    for (const id of ids) expect(w.known(id)).toBe(true);
    for (const [i, d] of datas.entries()) expect(await w.save(BlobType.data, ids[i]!, d)).toBe(false);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await w.flush();
    expect(index.size).toBe(3);
    expect(w.stats.blobsAdded).toBe(3);
  });

  it('returns nothing and writes nothing when flushed empty', async () => {
    const store = newStore();
    expect(await new BlobWriter(store, new CompactIndex(), OPTS).flush()).toEqual([]);
    expect(await namesOf(store, 'index')).toEqual([]);
  });

  it('seals queued data blobs on assist(), into packs of its own, stored and indexed like the rest', async () => {
    const store = newStore();
    const index = new CompactIndex();
    const w = new BlobWriter(store, index, OPTS);
    // ~20 MB: more than the workers are sent ahead (a few MiB each), so batches queue
    const datas = Array.from({ length: 40 }, (_, i) => Buffer.concat([lowEntropyText(300_000 + i), xorshiftBytes(200_000, 700 + i)]));
    const saves = datas.map((d) => w.save(BlobType.data, HASHER.raw(d), d));
    let assisted = 0;
    while (w.assist()) assisted++;
    if (sealWorkers === 0) expect(assisted).toBe(0);
    else expect(assisted).toBeGreaterThanOrEqual(4);
    expect(await Promise.all(saves)).toEqual(datas.map(() => true));
    await w.flush();
    expect(w.stats.blobsAdded).toBe(40);
    let entries = 0;
    for (const name of await namesOf(store, 'data')) {
      const { length } = await store.get({ kind: 'data', name });
      entries += (await readPackIndex(store, DATA_KEY, name as PackId, length)).entries.length;
    }
    expect(entries).toBe(40);
    const reader = new BlobReader(store, index, DATA_KEY, HASHER);
    for (const d of datas) expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(d)), d)).toBe(0);
  });

  it.runIf(sealWorkers > 0)('saveData: calls done once per blob, not before the packs waiting for upload are few enough', async () => {
    const inner = newStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Pick<BlobStore, 'put' | 'putFile' | 'stagingDir'> = {
      put: async (ref, body, o) => {
        if (ref.kind === 'data') await gate;
        return inner.put(ref, body, o);
      },
      ...(inner.putFile && inner.stagingDir !== undefined
        ? {
            stagingDir: inner.stagingDir,
            putFile: async (ref: BlobRef, file: string, o?: PutOptions) => {
              await gate;
              return inner.putFile!(ref, file, o);
            },
          }
        : {}),
    };
    const w = new BlobWriter(slow, new CompactIndex(), { ...OPTS, uploadConcurrency: 1 });
    // incompressible 600 KB blobs in 1 MiB packs: a pack closes every second blob
    const datas = blobs(12, 600_000, 9);
    let done = 0;
    const errors: unknown[] = [];
    for (const d of datas) {
      const accepted = w.saveData(HASHER.raw(d), HASHER.id(d), d, {}, (err) => {
        done++;
        if (err !== undefined) errors.push(err);
      });
      expect(accepted).toBe(true);
    }
    // known while in flight: not taken, and its callback is never called
    expect(w.saveData(HASHER.raw(datas[0]!), HASHER.id(datas[0]!), datas[0]!, {}, () => (done += 100))).toBe(false);
    const until = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(() => w.stats.blobsAdded === 12);
    expect(w.stats.blobsAdded).toBe(12);
    // sealed, but held back while uploads do not move
    expect(done).toBeLessThan(12);
    release();
    await until(() => done === 12);
    expect(done).toBe(12);
    await w.flush();
    expect(errors).toEqual([]);
  });

  it.runIf(sealWorkers > 0)('saveData: throws, and never calls done, when the writer has failed or the signal is aborted', async () => {
    const w = new BlobWriter(newStore(), new CompactIndex(), OPTS);
    const d = lowEntropyText(5000);
    const ac = new AbortController();
    ac.abort();
    expect(() => w.saveData(HASHER.raw(d), HASHER.id(d), d, { signal: ac.signal }, () => expect.unreachable())).toThrow(expect.objectContaining({ name: 'AbortError' }));
    // not known after all: the next save stores it
    expect(w.known(HASHER.raw(d))).toBe(false);
    await w.close();
    const err = await w.save(BlobType.data, HASHER.raw(d), d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(() => w.saveData(HASHER.raw(d), HASHER.id(d), d, {}, () => expect.unreachable())).toThrow();
  });

  it('fails flush, and the next save, when a pack upload fails; never indexes the lost pack', async () => {
    const inner = newStore();
    const failing: Pick<BlobStore, 'put'> = {
      put: async (ref: BlobRef, body: Uint8Array, opts?: PutOptions) => {
        if (ref.kind === 'data') throw new CairnError('E_IO', 'disk on fire', { retryable: true });
        return inner.put(ref, body, opts);
      },
    };
    const index = new CompactIndex();
    const w = new BlobWriter(failing, index, OPTS);
    const d = lowEntropyText(5000);
    await w.save(BlobType.data, HASHER.raw(d), d);
    const err = await w.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).code).toBe('E_IO');
    expect((err as CairnError).cause).toBeInstanceOf(CairnError);
    await expect(w.save(BlobType.data, HASHER.raw(Buffer.from('other')), Buffer.from('other'))).rejects.toBe(err);
    expect(index.size).toBe(0);
    expect(await namesOf(inner, 'index')).toEqual([]);
  });

  it.runIf(storeKind === 'local')('fails flush when a staged pack cannot be stored, and removes the staged file', async () => {
    const inner = newStore();
    const failing: Pick<BlobStore, 'put' | 'putFile' | 'stagingDir'> = {
      put: (ref, body, opts) => inner.put(ref, body, opts),
      stagingDir: inner.stagingDir!,
      putFile: async () => {
        throw new CairnError('E_IO', 'disk on fire');
      },
    };
    const w = new BlobWriter(failing, new CompactIndex(), OPTS);
    const d = lowEntropyText(5000);
    await w.save(BlobType.data, HASHER.raw(d), d);
    await expect(w.flush()).rejects.toThrow('disk on fire');
    await w.settle();
    expect(readdirSync(inner.stagingDir!).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await namesOf(inner, 'data')).toEqual([]);
  });

  it('fails flush when the index file cannot be written', async () => {
    const inner = newStore();
    const failing: Pick<BlobStore, 'put'> = {
      put: async (ref, body, opts) => {
        if (ref.kind === 'index') throw new CairnError('E_IO', 'index folder gone');
        return inner.put(ref, body, opts);
      },
    };
    const w = new BlobWriter(failing, new CompactIndex(), OPTS);
    const d = lowEntropyText(5000);
    await w.save(BlobType.data, HASHER.raw(d), d);
    await expect(w.flush()).rejects.toMatchObject({ code: 'E_IO' });
    expect(await namesOf(inner, 'data')).toHaveLength(1);
  });

  it('stops at an aborted signal', async () => {
    const w = new BlobWriter(newStore(), new CompactIndex(), OPTS);
    const d = lowEntropyText(5000);
    await expect(w.save(BlobType.data, HASHER.raw(d), d, { signal: AbortSignal.abort() })).rejects.toThrow();
  });

  // BUG (src/repo/blob-writer.ts save, lines 73–76): the id is added to #pending before
  // encodeBlob and the abort check, and never removed when either throws. The blob is then
  // "known" although no pack holds it: a later save of the same blob returns false, FileSaver
  // skips it via known(), flush succeeds, and a snapshot can reference a blob that was never
  // stored. Fix: `try { encode …; builder.addEncoded(…) } catch (err) { this.#pending.delete(key); throw err; }`.
  it('does not count a blob whose save was aborted as known, and stores it on the next save', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    const d = lowEntropyText(5000);
    await expect(w.save(BlobType.data, HASHER.raw(d), d, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(w.known(HASHER.raw(d))).toBe(false);
    expect(await w.save(BlobType.data, HASHER.raw(d), d)).toBe(true);
    await w.flush();
    expect(await namesOf(store, 'data')).toHaveLength(1);
  });

  it.runIf(sealWorkers > 0 && storeKind === 'local')('does not count a blob whose sealing failed as known', async () => {
    const store = newStore();
    const root = store.stagingDir!;
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    // the seal worker cannot create its pack file: the staging folder is now a file
    renameSync(root, `${root}.away`);
    writeFileSync(root, '');
    try {
      const d = lowEntropyText(5000);
      await expect(w.save(BlobType.data, HASHER.raw(d), d)).rejects.toThrow(/ENOTDIR/);
      expect(w.known(HASHER.raw(d))).toBe(false);
    } finally {
      rmSync(root);
      renameSync(`${root}.away`, root);
    }
  });

  it('gives room for a blob in the seal workers\' next batch, and once they are gone says so as the repository\'s error', async () => {
    const w = new BlobWriter(newStore(), new CompactIndex(), OPTS);
    if (sealWorkers === 0) {
      expect(w.reserve(100)).toBeUndefined();
      return;
    }
    expect(w.reserve(100)?.length).toBe(100);
    await w.flush();
    await w.close();
    // a CairnError: the walker fails the backup on it instead of blaming the file it reads
    expect(() => w.reserve(100)).toThrow(CairnError);
  });

  it('returns the ids of every index file written so far from each flush', async () => {
    const store = newStore();
    const w = new BlobWriter(store, new CompactIndex(), OPTS);
    const [a, b] = blobs(2, 1000, 4);
    await w.save(BlobType.data, HASHER.raw(a!), a!);
    const first: IndexId[] = [...(await w.flush())];
    await w.save(BlobType.data, HASHER.raw(b!), b!);
    const second = await w.flush();
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(2);
    expect(second[0]).toBe(first[0]);
  });
});

// (on this thread: settle() stops seal workers, and the writer with them)
describe('BlobWriter and the shared index', () => {
  const OPTS = BASE_OPTS;
  it('publishes a pack to the shared index only once an index file lists it', async () => {
    const store = createMemoryStore();
    const index = new CompactIndex();
    const writer = new RealBlobWriter(store, index, OPTS);
    const data = blobs(5, 600 * 1024, 7);
    for (const b of data) await writer.save(BlobType.data, HASHER.raw(b), b);
    await writer.settle(); // uploads done, no index file yet (fewer than 16 packs, no flush)
    expect((await namesOf(store, 'data')).length).toBeGreaterThan(0);
    expect(await namesOf(store, 'index')).toEqual([]);
    expect(index.size).toBe(0);
    // a writer that failed here (never flushed) leaves the shared index true to the disk, and
    // has dropped the pack it was building: it can no longer flush
    await expect(writer.flush()).rejects.toThrow('blob writer closed before its blobs were flushed');
    expect(index.size).toBe(0);
    // one that flushes publishes everything
    const next = new RealBlobWriter(store, index, OPTS);
    for (const b of data) await next.save(BlobType.data, HASHER.raw(b), b);
    await next.flush();
    expect(index.size).toBe(5);
    expect(await namesOf(store, 'index')).toHaveLength(1);
  });
});
