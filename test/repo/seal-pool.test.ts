// The seal workers as backups run them (the worker script is the built dist/repo/seal-worker.js):
// every blob comes back sealed in exactly one pack that opens with the data key, the caller's
// buffer is free once add() returns, and a worker that fails takes every blob in flight with it.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../src/backend/local-store.js';
import { createMemoryStore } from '../../src/backend/memory-store.js';
import { IdHasher, plainHash } from '../../src/core/hash.js';
import type { PackId } from '../../src/core/ids.js';
import { BlobType } from '../../src/core/pack-format.js';
import { BlobReader } from '../../src/repo/blob-reader.js';
import { CompactIndex } from '../../src/repo/compact-index.js';
import { type FinishedPack, PackBuilder, type StagedPack, sealBatch } from '../../src/repo/pack-writer.js';
import { randomBytes } from 'node:crypto';
import { readPackIndex } from '../../src/repo/repository.js';
import { SealPool, type SealWorkerInit } from '../../src/repo/seal-pool.js';
import { lowEntropyText, xorshiftBytes } from '../core/fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x31);
const ID_KEY = new Uint8Array(32).fill(0x32);
const HASHER = new IdHasher(ID_KEY);
const INIT: SealWorkerInit = { dataKey: DATA_KEY, compression: { codec: 'zstd', level: 3 }, packTargetBytes: 1024 * 1024 };

const pools: SealPool[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newPool(init: SealWorkerInit = INIT, workers = 2): { pool: SealPool; packs: FinishedPack[] } {
  const { pool, packs } = newAnyPool(init, workers);
  return { pool, packs: packs as FinishedPack[] };
}

function newAnyPool(init: SealWorkerInit, workers = 2, slabBytes?: number): { pool: SealPool; packs: (FinishedPack | StagedPack)[] } {
  const packs: (FinishedPack | StagedPack)[] = [];
  const pool = new SealPool(init, workers, (p) => packs.push(p), slabBytes);
  pools.push(pool);
  return { pool, packs };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cairn-seal-'));
  dirs.push(d);
  return d;
}

/** The staged files (`.tmp-*`) in `dir`. */
function stagedFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.tmp-'));
}

/** Stores finished packs in a memory store and indexes them: a reader of their blobs. */
async function readerOf(packs: readonly FinishedPack[]): Promise<{ index: CompactIndex; reader: BlobReader }> {
  const store = createMemoryStore();
  const index = new CompactIndex();
  for (const p of packs) {
    await store.put({ kind: 'data', name: p.packId }, p.bytes);
    index.addPack(p.packId, p.salt, p.entries);
  }
  return { index, reader: new BlobReader(store, index, DATA_KEY, HASHER) };
}

/** Small text files, medium random ones and a few chunk-sized blobs, all distinct. */
function mixedBlobs(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 300; i++) out.push(Buffer.concat([Buffer.from(`file ${i}\n`), lowEntropyText(200 + ((i * 977) % 6000)).subarray(i % 50)]));
  for (let i = 0; i < 20; i++) out.push(Buffer.from(xorshiftBytes(20_000 + i * 3000, 500 + i)));
  for (let i = 0; i < 3; i++) out.push(Buffer.concat([lowEntropyText(1_500_000).subarray(i), xorshiftBytes(300_000, 900 + i)]));
  return out;
}

/** A seal for assist(): seals into a pack builder of its own (64 MiB target: its pack closes
 *  only on finish()) and keeps a copy of every blob it was given, in order. */
function assistSealer(): { sealHere: (ids: Uint8Array, lengths: readonly number[], buf: Uint8Array) => Uint32Array; seen: Buffer[]; here: PackBuilder<FinishedPack> } {
  const here = new PackBuilder<FinishedPack>(DATA_KEY, (n) => randomBytes(n), 64 << 20);
  const seen: Buffer[] = [];
  const sealHere = (ids: Uint8Array, lengths: readonly number[], buf: Uint8Array): Uint32Array => {
    let off = 0;
    for (const n of lengths) seen.push(Buffer.from(buf.subarray(off, (off += n))));
    return sealBatch(here, INIT.compression, ids, lengths, buf, () => expect.unreachable());
  };
  return { sealHere, seen, here };
}

describe('SealPool', () => {
  it('seals every blob into exactly one pack that opens and verifies with the data key', async () => {
    const { pool, packs } = newPool();
    const blobs = mixedBlobs();
    const sealed = await Promise.all(blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b)));
    await pool.flush();
    expect(packs.length).toBeGreaterThanOrEqual(3);
    const store = createMemoryStore();
    const index = new CompactIndex();
    for (const p of packs) {
      expect(plainHash(p.bytes)).toBe(p.packId);
      await store.put({ kind: 'data', name: p.packId }, p.bytes);
      // the pack's own header says what the worker reported
      const header = await readPackIndex(store, DATA_KEY, p.packId as PackId, p.bytes.length);
      expect(header.entries.map((e) => [Buffer.from(e.id).toString('hex'), e.offset, e.length, e.rawLength])).toEqual(
        p.entries.map((e) => [Buffer.from(e.id).toString('hex'), e.offset, e.length, e.rawLength]),
      );
      index.addPack(p.packId, p.salt, p.entries);
    }
    expect(index.size).toBe(blobs.length);
    const reader = new BlobReader(store, index, DATA_KEY, HASHER);
    for (const [i, b] of blobs.entries()) {
      const id = HASHER.raw(b);
      expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
      expect(index.lookup(id)?.length).toBe(sealed[i]);
    }
  });

  it('builds packs as files in the staging folder when given one, which a local store takes by rename', async () => {
    const repo = tempDir();
    const store = new LocalBlobStore(repo);
    const { pool, packs } = newAnyPool({ ...INIT, stagingDir: store.stagingDir! });
    const blobs = mixedBlobs();
    await Promise.all(blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b)));
    await pool.flush();
    expect(packs.length).toBeGreaterThanOrEqual(3);
    const index = new CompactIndex();
    for (const p of packs) {
      if (!('file' in p)) throw new Error('expected a staged pack');
      expect(p.file.startsWith(join(repo, '.tmp-'))).toBe(true);
      const bytes = readFileSync(p.file);
      expect(bytes.length).toBe(p.sizeBytes);
      expect(plainHash(bytes)).toBe(p.packId);
      await store.putFile({ kind: 'data', name: p.packId }, p.file);
      expect(existsSync(p.file)).toBe(false);
      const header = await readPackIndex(store, DATA_KEY, p.packId as PackId, p.sizeBytes);
      expect(header.entries.length).toBe(p.entries.length);
      index.addPack(p.packId, p.salt, p.entries);
    }
    expect(stagedFiles(repo)).toEqual([]);
    const reader = new BlobReader(store, index, DATA_KEY, HASHER);
    for (const b of blobs) expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
  });

  it('removes the staged file of the pack it was building when closed unflushed', async () => {
    const dir = tempDir();
    const { pool } = newAnyPool({ ...INIT, packTargetBytes: 64 << 20, stagingDir: dir }, 1);
    const blobs = Array.from({ length: 8 }, (_, i) => Buffer.from(xorshiftBytes(200_000, 300 + i)));
    await Promise.all(blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b)));
    expect(stagedFiles(dir).length).toBe(1);
    await pool.close();
    expect(stagedFiles(dir)).toEqual([]);
  });

  it('fails with the path when its staging folder cannot take a file, and leaves nothing there', async () => {
    const dir = tempDir();
    const notDir = join(dir, 'file');
    writeFileSync(notDir, 'x');
    const { pool } = newAnyPool({ ...INIT, stagingDir: notDir }, 1);
    const b = lowEntropyText(5000);
    await expect(pool.add(BlobType.data, HASHER.raw(b), b)).rejects.toThrow(`creating ${notDir}/.tmp-`);
    await expect(pool.flush()).rejects.toThrow(/ENOTDIR/);
    expect(readdirSync(dir)).toEqual(['file']);
  });

  it('writes batches into its slab and gives each run back once sealed; a batch the slab has no room for gets a buffer of its own', async () => {
    // a 2 MiB slab: the first batches fit, the 3 MiB blob never does, and while the worker is
    // behind later batches find the slab full
    const { pool, packs } = newAnyPool(INIT, 1, 2 * 1024 * 1024);
    const blobs = [...mixedBlobs(), Buffer.from(xorshiftBytes(3 * 1024 * 1024, 77)), ...Array.from({ length: 6 }, (_, i) => Buffer.from(lowEntropyText(700_000 + i)))];
    const sealed = blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b));
    expect(pool.slabBytesInUse).toBeGreaterThan(0);
    const lengths = await Promise.all(sealed);
    await pool.flush();
    expect(pool.slabBytesInUse).toBe(0);
    const { index, reader } = await readerOf(packs as FinishedPack[]);
    expect(index.size).toBe(blobs.length);
    for (const [i, b] of blobs.entries()) {
      expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
      expect(index.lookup(HASHER.raw(b))?.length).toBe(lengths[i]);
    }
  });

  it('copies a blob before add() returns: the caller may overwrite its buffer at once', async () => {
    const { pool, packs } = newPool(INIT, 1);
    const buf = Buffer.from(lowEntropyText(50_000));
    const want = Buffer.from(buf);
    const id = HASHER.raw(buf);
    const done = pool.add(BlobType.data, id, buf);
    buf.fill(0x55);
    id.fill(0);
    await done;
    await pool.flush();
    const store = createMemoryStore();
    const index = new CompactIndex();
    await store.put({ kind: 'data', name: packs[0]!.packId }, packs[0]!.bytes);
    index.addPack(packs[0]!.packId, packs[0]!.salt, packs[0]!.entries);
    expect(Buffer.compare(await new BlobReader(store, index, DATA_KEY, HASHER).load(BlobType.data, HASHER.id(want)), want)).toBe(0);
  });

  it('takes a blob read into room from reserve() where it lies; room not filled is used again, and an empty batch is given back', async () => {
    const { pool, packs } = newAnyPool(INIT, 1, 4 * 1024 * 1024);
    const blobs = mixedBlobs().slice(0, 40);
    const sealed: Promise<number>[] = [];
    for (const [i, b] of blobs.entries()) {
      const room = pool.reserve(b.length + 1);
      expect(room.length).toBe(b.length + 1);
      // every third blob is "known": read, then not added (its room is the next one's)
      if (i % 3 === 2) {
        room.fill(0xee);
        continue;
      }
      b.copy(room);
      sealed.push(pool.add(BlobType.data, HASHER.raw(b), room.subarray(0, b.length)));
    }
    // room reserved and left in a batch holding nothing: a larger blob takes a batch of its own,
    // and the empty one's run goes back
    await Promise.all(sealed);
    pool.reserve(1000);
    const big = Buffer.from(xorshiftBytes(2 * 1024 * 1024, 91));
    sealed.push(pool.add(BlobType.data, HASHER.raw(big), big));
    await Promise.all(sealed);
    // and room reserved last, never filled, goes back on flush
    pool.reserve(1000);
    await pool.flush();
    expect(pool.slabBytesInUse).toBe(0);
    const { index, reader } = await readerOf(packs as FinishedPack[]);
    const added = [...blobs.filter((_, i) => i % 3 !== 2), big];
    expect(index.size).toBe(added.length);
    for (const b of added) expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
  });

  it('transfers to its worker a batch of its own that a blob in reserve() room fills: the room is detached once add() returns', async () => {
    // a 1 MiB slab: the first blob takes it, so the room reserved next is a buffer of its own,
    // and a blob that fills it closes the batch, whose buffer goes to the worker whole. A caller
    // must read what it needs of the room (its length too) before add() (FileSaver's small files)
    const { pool, packs } = newAnyPool(INIT, 1, 1024 * 1024);
    const first = Buffer.from(lowEntropyText(1_000_000));
    const sealed = [pool.add(BlobType.data, HASHER.raw(first), first)];
    const blob = Buffer.from(lowEntropyText(1024 * 1024));
    const room = pool.reserve(blob.length);
    blob.copy(room);
    sealed.push(pool.add(BlobType.data, HASHER.raw(blob), room));
    expect(room.length).toBe(0);
    await Promise.all(sealed);
    await pool.flush();
    const { index, reader } = await readerOf(packs as FinishedPack[]);
    expect(index.size).toBe(2);
    for (const b of [first, blob]) expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
  });

  it('spreads a steady stream of batches over its workers and hands back nothing on an empty flush', async () => {
    const { pool, packs } = newPool(INIT, 2);
    await pool.flush();
    expect(packs).toEqual([]);
    const blobs = Array.from({ length: 64 }, (_, i) => Buffer.from(xorshiftBytes(300_000, 7000 + i)));
    await Promise.all(blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b)));
    await pool.flush();
    // two workers each finish a pack of their own on flush, besides the full ones
    const salts = new Set(packs.map((p) => Buffer.from(p.salt).toString('hex')));
    expect(salts.size).toBe(packs.length);
    expect(packs.reduce((n, p) => n + p.entries.length, 0)).toBe(64);
  });

  it('fails every blob in flight and every later call when a worker cannot start', async () => {
    const { pool } = newPool({ ...INIT, dataKey: undefined as unknown as Uint8Array });
    const b = lowEntropyText(1000);
    await expect(pool.add(BlobType.data, HASHER.raw(b), b)).rejects.toThrow(/seal worker/);
    await expect(pool.add(BlobType.data, HASHER.raw(b), b)).rejects.toThrow(/seal worker/);
    await expect(pool.flush()).rejects.toThrow(/seal worker/);
  });

  it('lets the caller seal batches no worker has started, newest first; every blob lands in one pack', async () => {
    // a slab that holds all 24 batches of ~1 MiB: each is sent as it closes, and assist() takes
    // back those the one worker has not started, newest first
    const { pool, packs } = newAnyPool(INIT, 1, 64 * 1024 * 1024);
    const blobs = Array.from({ length: 48 }, (_, i) => Buffer.concat([lowEntropyText(400_000 + i), xorshiftBytes(120_000, 4000 + i)]));
    const { sealHere, seen, here } = assistSealer();
    const sealed = blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b));
    // the last batch is still open (it closes on the next turn): a full batch closes at once
    let assisted = 0;
    while (pool.assist(sealHere)) assisted++;
    // the worker starts meanwhile and takes the oldest (how many depends on the machine)
    expect(assisted).toBeGreaterThan(0);
    expect(assisted).toBeLessThanOrEqual(23);
    const taken = seen.map((d) => blobs.findIndex((b) => Buffer.compare(b, d) === 0));
    expect(taken[0]).toBeGreaterThanOrEqual(blobs.length - 4);
    // newest first: each batch taken is older than the one before (two blobs per batch)
    for (let k = 2; k < taken.length; k += 2) expect(taken[k]).toBeLessThan(taken[k - 2]!);
    const lengths = await Promise.all(sealed);
    await pool.flush();
    expect(pool.assist(sealHere)).toBe(false);
    expect(pool.slabBytesInUse).toBe(0);
    const mine = here.finish()!;
    const all = [...(packs as FinishedPack[]), mine];
    const { index, reader } = await readerOf(all);
    expect(all.reduce((n, p) => n + p.entries.length, 0)).toBe(blobs.length);
    expect(mine.entries.length).toBe(seen.length);
    for (const [i, b] of blobs.entries()) {
      expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
      expect(index.lookup(HASHER.raw(b))?.length).toBe(lengths[i]);
    }
  });

  it('seals each batch once when the caller and the worker race for them', async () => {
    // one blob per batch (each added on a turn of its own); every fourth turn the caller takes
    // all it can, down to the batch the worker is sealing, which it must not take too: every
    // blob in exactly one pack
    const { pool, packs } = newAnyPool({ ...INIT, packTargetBytes: 256 * 1024 }, 1, 16 * 1024 * 1024);
    // blobs large enough (~1 ms of zstd each) that the worker falls behind four of them a turn
    const blobs = Array.from({ length: 200 }, (_, i) => Buffer.concat([Buffer.from(`blob ${i}\n`), lowEntropyText(150_000 + ((i * 131) % 9000))]));
    const { sealHere, seen, here } = assistSealer();
    const sealed: Promise<number>[] = [];
    for (const [i, b] of blobs.entries()) {
      sealed.push(pool.add(BlobType.data, HASHER.raw(b), b));
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (i % 4 === 3) while (pool.assist(sealHere));
    }
    await Promise.all(sealed);
    await pool.flush();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(blobs.length);
    const all = [...(packs as FinishedPack[]), here.finish()!];
    expect(all.reduce((n, p) => n + p.entries.length, 0)).toBe(blobs.length);
    const { index, reader } = await readerOf(all);
    expect(index.size).toBe(blobs.length);
    for (const b of blobs) expect(Buffer.compare(await reader.load(BlobType.data, HASHER.id(b)), b)).toBe(0);
  });

  it('leaves to the worker a batch the slab had no room for', async () => {
    // a 2 MiB slab: the first batch is in it, the next ones have buffers of their own, which
    // are transferred to the worker and are not the caller's to take back
    const { pool, packs } = newAnyPool(INIT, 1, 2 * 1024 * 1024);
    const blobs = Array.from({ length: 8 }, (_, i) => Buffer.from(lowEntropyText(1_100_000 + i)));
    const { sealHere, seen, here } = assistSealer();
    const sealed = blobs.map((b) => pool.add(BlobType.data, HASHER.raw(b), b));
    while (pool.assist(sealHere));
    // at most the one batch in the slab
    expect(seen.length).toBeLessThanOrEqual(1);
    await Promise.all(sealed);
    await pool.flush();
    const all = [...(packs as FinishedPack[]), ...(seen.length > 0 ? [here.finish()!] : [])];
    expect(all.reduce((n, p) => n + p.entries.length, 0)).toBe(blobs.length);
  });

  it('has nothing to assist with once the worker has sealed what it was sent, and fails as a whole when a seal it is given throws', async () => {
    const { pool } = newPool(INIT, 1);
    const few = Array.from({ length: 3 }, (_, i) => Buffer.from(lowEntropyText(500_000 + i)));
    await Promise.all(few.map((b) => pool.add(BlobType.data, HASHER.raw(b), b)));
    expect(pool.assist(() => expect.unreachable())).toBe(false);
    const many = Array.from({ length: 12 }, (_, i) => Buffer.from(lowEntropyText(1_100_000 + i)));
    const inFlight = many.map((b) => pool.add(BlobType.data, HASHER.raw(b), b));
    for (const p of inFlight) p.catch(() => undefined);
    expect(
      pool.assist(() => {
        throw new Error('disk full');
      }),
    ).toBe(true);
    // the batch it took, every blob in flight and every later call fail with it
    await expect(inFlight[inFlight.length - 1]).rejects.toThrow('disk full');
    await expect(inFlight[0]).rejects.toThrow('disk full');
    await expect(pool.add(BlobType.data, HASHER.raw(few[0]!), few[0]!)).rejects.toThrow('disk full');
    await expect(pool.flush()).rejects.toThrow('disk full');
    expect(pool.assist(() => [])).toBe(false);
  });

  it('rejects blobs in flight when closed, and says whether blobs were left unflushed', async () => {
    const { pool } = newPool();
    expect(pool.unflushed).toBe(false);
    const b = lowEntropyText(1000);
    const p = pool.add(BlobType.data, HASHER.raw(b), b);
    expect(pool.unflushed).toBe(true);
    await pool.close();
    await expect(p).rejects.toThrow('seal pool closed');
    await expect(pool.add(BlobType.data, HASHER.raw(b), b)).rejects.toThrow();
  });
});
