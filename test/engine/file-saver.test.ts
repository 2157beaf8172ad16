import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS, FastCdcChunker, chunkLengths } from '../../src/core/chunker.js';
import { BlobType } from '../../src/core/pack-format.js';
import type { BlobId } from '../../src/core/ids.js';
import { ByteBudget, FileSaver } from '../../src/engine/file-saver.js';
import { fromUserPath } from '../../src/engine/progress.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

// Small chunks, so files of a few KiB take the multi-chunk read path.
const PARAMS: ChunkerParams = { minSizeBytes: 256, avgSizeBytes: 1024, maxSizeBytes: 4096 };

let dir: string;
let repo: Repository;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-saver-'));
  ({ repo } = await newTestRepo());
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Saves `file` as the walker would, with `sizeHint` as lstat's size, and reads it back. */
async function saveAndRead(file: string, sizeHint: number, params = PARAMS): Promise<{ bytes: Buffer; content: readonly (BlobId | number)[]; size: number }> {
  const writer = repo.newWriter();
  const saver = new FileSaver(writer, repo.hasher, repo.gear, params, new ByteBudget(64 * 1024));
  const saved = await saver.save(fromUserPath(file), sizeHint);
  await saver.drain();
  await writer.flush();
  const parts: Buffer[] = [];
  for (const ref of saved.content) parts.push(typeof ref === 'number' ? Buffer.alloc(ref) : Buffer.from(await repo.reader.load(BlobType.data, ref)));
  return { bytes: Buffer.concat(parts), content: saved.content, size: saved.sizeBytes };
}

describe('FileSaver', () => {
  it.each([
    ['grew after lstat (small read path)', 100, 10],
    ['shrank after lstat (small read path)', 100, 5000],
    ['grew after lstat (chunked read path)', 20_000, 300],
    ['shrank after lstat (chunked read path)', 3_000, 20_000],
    ['is empty', 0, 0],
    ['was empty at lstat and grew', 5_000, 0],
  ])('saves what it reads when the file %s', async (_what, actualBytes, sizeHint) => {
    const file = path.join(dir, `f-${actualBytes}-${sizeHint}`);
    const data = randomBytes(actualBytes);
    await writeFile(file, data);
    const r = await saveAndRead(file, sizeHint);
    expect(r.size).toBe(actualBytes);
    expect(r.bytes.equals(data)).toBe(true);
  });

  it('records all-zero chunks as holes, never stored, and stores the rest', async () => {
    const file = path.join(dir, 'sparse');
    const data = Buffer.concat([Buffer.alloc(40_000), randomBytes(3000), Buffer.alloc(40_000)]);
    await writeFile(file, data);
    const before = repo.index.size;
    const r = await saveAndRead(file, data.length);
    expect(r.bytes.equals(data)).toBe(true);
    const holes = r.content.filter((c): c is number => typeof c === 'number');
    expect(holes.reduce((a, b) => a + b, 0)).toBeGreaterThan(70_000);
    const stored = r.content.filter((c) => typeof c === 'string');
    expect(repo.index.size - before).toBeLessThanOrEqual(stored.length);
    expect(stored.length).toBeGreaterThan(0);
  });

  it('rejects a file that vanished with ENOENT (the walker skips it)', async () => {
    const saver = new FileSaver(repo.newWriter(), repo.hasher, repo.gear, PARAMS, new ByteBudget(1 << 20));
    await expect(saver.save(fromUserPath(path.join(dir, 'gone')), 10)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('tells a large all-zero chunk from one with a single byte set past its first 64 KiB', async () => {
    const zeros = Buffer.alloc(300_000);
    const almost = Buffer.alloc(300_000);
    almost[150_000] = 7;
    for (const [name, data, hole] of [['zero-chunk', zeros, true], ['almost-zero-chunk', almost, false]] as const) {
      const file = path.join(dir, name);
      await writeFile(file, data);
      const r = await saveAndRead(file, data.length, DEFAULT_CHUNKER_PARAMS);
      expect(r.bytes.equals(data)).toBe(true);
      expect(r.content).toEqual(hole ? [300_000] : [expect.any(String)]);
    }
  });

  it('cuts chunks longer than its 4 MiB read buffer where the chunker does on the whole file', async () => {
    // constant bytes give the rolling hash no cut point, so every chunk but the last is max size
    const data = Buffer.concat([Buffer.alloc(19 * 1024 * 1024 + 123, 0x61), randomBytes(3 * 1024 * 1024)]);
    const file = path.join(dir, 'long-chunks');
    await writeFile(file, data);
    const expected = chunkLengths(new FastCdcChunker(repo.gear, DEFAULT_CHUNKER_PARAMS), data);
    expect(Math.max(...expected)).toBeGreaterThan(4 * 1024 * 1024);
    const r = await saveAndRead(file, data.length, DEFAULT_CHUNKER_PARAMS);
    expect(r.bytes.equals(data)).toBe(true);
    const lengths = await Promise.all(r.content.map(async (ref) => (typeof ref === 'number' ? ref : (await repo.reader.load(BlobType.data, ref)).length)));
    expect(lengths).toEqual(expected);
  });

  describe('saveSmallNow', () => {
    /** A writer that copies what it is given, as seal workers do (saveSmallNow needs one). */
    const copyingWriter = () => {
      const writer = repo.newWriter({ sealWorkers: 2 });
      expect(writer.copiesData).toBe(true);
      return writer;
    };

    it('saves a small file without a promise, as save() would', async () => {
      const file = path.join(dir, 'now-small');
      const data = randomBytes(3000);
      await writeFile(file, data);
      const writer = copyingWriter();
      try {
        const saver = new FileSaver(writer, repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, new ByteBudget(1 << 20));
        const saved = saver.saveSmallNow(fromUserPath(file), data.length);
        expect(saved?.sizeBytes).toBe(3000);
        expect(saved?.content).toEqual([repo.hasher.id(data)]);
        await saver.drain();
        await writer.flush();
        expect(Buffer.from(await repo.reader.load(BlobType.data, saved!.content[0] as BlobId)).equals(data)).toBe(true);
      } finally {
        await writer.close();
      }
    });

    it('declines (undefined) a file too large to be one chunk, a full budget, a file that grew, or a writer that does not copy', async () => {
      const file = path.join(dir, 'now-grew');
      await writeFile(file, randomBytes(5000));
      const writer = copyingWriter();
      try {
        const budget = new ByteBudget(10_000);
        const saver = new FileSaver(writer, repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, budget);
        expect(saver.saveSmallNow(fromUserPath(file), 300 * 1024)).toBeUndefined();
        // the file is larger than lstat said: it is read in parts by save()
        expect(saver.saveSmallNow(fromUserPath(file), 100)).toBeUndefined();
        // the budget is all taken: no wait here
        expect(budget.tryAcquire(10_000)).toBe(true);
        expect(saver.saveSmallNow(fromUserPath(file), 5000)).toBeUndefined();
        budget.release(10_000);
        expect(saver.saveSmallNow(fromUserPath(file), 5000)?.sizeBytes).toBe(5000);
        await saver.drain();
        await writer.flush();
      } finally {
        await writer.close();
      }
      const plain = new FileSaver(repo.newWriter({ sealWorkers: 0 }), repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, new ByteBudget(1 << 20));
      expect(plain.saveSmallNow(fromUserPath(file), 5000)).toBeUndefined();
    });

    it('saveSmallNowFd reads a file the caller opened, leaves it open, and declines one that grew', async () => {
      const file = path.join(dir, 'now-fd');
      const data = randomBytes(4000);
      await writeFile(file, data);
      const writer = copyingWriter();
      const fd = openSync(file, 'r');
      try {
        const budget = new ByteBudget(1 << 20);
        const saver = new FileSaver(writer, repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, budget);
        // larger than fstat said: declined, and its budget given back
        expect(saver.saveSmallNowFd(fd, 100)).toBeUndefined();
        expect(budget.tryAcquire(1 << 20)).toBe(true);
        budget.release(1 << 20);
        const reopened = openSync(file, 'r');
        try {
          const saved = saver.saveSmallNowFd(reopened, data.length);
          expect(saved?.sizeBytes).toBe(4000);
          expect(saved?.content).toEqual([repo.hasher.id(data)]);
          // still open: the caller closes it
          expect(fstatSync(reopened).size).toBe(4000);
        } finally {
          closeSync(reopened);
        }
        await saver.drain();
        await writer.flush();
      } finally {
        closeSync(fd);
        await writer.close();
      }
    });

    it('returns the budget when the read fails', async () => {
      const writer = copyingWriter();
      try {
        const budget = new ByteBudget(10_000);
        const saver = new FileSaver(writer, repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, budget);
        expect(() => saver.saveSmallNow(fromUserPath(path.join(dir, 'missing')), 5000)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
        expect(budget.tryAcquire(10_000)).toBe(true);
      } finally {
        await writer.close();
      }
    });
  });
});

describe('ByteBudget.tryAcquire', () => {
  it('takes bytes only when they fit now and nobody waits', async () => {
    const budget = new ByteBudget(100);
    expect(budget.tryAcquire(60)).toBe(true);
    expect(budget.tryAcquire(50)).toBe(false);
    const waiting = budget.acquire(50);
    // 40 would fit, but a waiter comes first
    expect(budget.tryAcquire(40)).toBe(false);
    budget.release(60);
    await waiting;
    expect(budget.tryAcquire(50)).toBe(true);
    expect(budget.tryAcquire(1)).toBe(false);
  });
});

describe('ByteBudget assist', () => {
  it('runs the assist while someone waits, once per turn, until it finds nothing or nobody waits', async () => {
    let work = 3;
    const calls: number[] = [];
    const budget = new ByteBudget(100, () => {
      calls.push(work);
      if (work === 0) return false;
      work--;
      if (work === 1) budget.release(60); // the work freed bytes: the waiter is let in
      return true;
    });
    expect(budget.tryAcquire(60)).toBe(true);
    await budget.acquire(40);
    expect(calls).toEqual([]); // nobody waited
    const waiting = budget.acquire(50);
    expect(calls).toEqual([]); // not at once: I/O callbacks of this turn come first
    await waiting;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // ran twice: the second call let the waiter in, so no third
    expect(calls).toEqual([3, 2]);
    // a waiter with no work to do: one call, which finds none
    work = 0;
    const again = budget.acquire(60);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([3, 2, 0]);
    budget.release(90);
    await again;
  });
});

describe('FileSaver with a writer that copies (the seal workers\' callback path)', () => {
  /** A writer that takes every chunk and keeps its callback, for the test to call. */
  function heldWriter() {
    const callbacks: ((err: unknown) => void)[] = [];
    const writer = {
      copiesData: true,
      known: () => false,
      reserve: () => undefined,
      save: () => Promise.reject(new Error('not this path')),
      saveData: (_id: Uint8Array, _hex: string, _data: Uint8Array, _opts: unknown, done: (err: unknown) => void) => {
        callbacks.push(done);
        return true;
      },
    };
    return { writer, callbacks };
  }

  /** Saves three small files (one chunk each) through `saver`. */
  async function saveThree(saver: FileSaver, name: string): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const file = path.join(dir, `${name}-${i}`);
      await writeFile(file, randomBytes(100 + i));
      await saver.save(fromUserPath(file), 100 + i);
    }
  }

  /** Whether `p` has settled once pending callbacks and I/O of this turn have run. */
  async function settled(p: Promise<unknown>): Promise<boolean> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    await new Promise((r) => setImmediate(r));
    return done;
  }

  it('drain() waits for every chunk handed over, and returns the budget as each is sealed', async () => {
    const { writer, callbacks } = heldWriter();
    const budget = new ByteBudget(1 << 20);
    const saver = new FileSaver(writer, repo.hasher, repo.gear, PARAMS, budget);
    await saveThree(saver, 'held');
    expect(callbacks).toHaveLength(3);
    expect(budget.tryAcquire(1 << 20)).toBe(false);
    const drained = saver.drain();
    callbacks[0]!(undefined);
    callbacks[2]!(undefined);
    expect(await settled(drained)).toBe(false);
    callbacks[1]!(undefined);
    expect(await settled(drained)).toBe(true);
    await drained;
    expect(budget.tryAcquire(1 << 20)).toBe(true);
  });

  it('reports the size of a small file read into room that the writer detaches as it takes it', async () => {
    // the seal pool transfers a batch with a buffer of its own to its worker when a blob fills
    // it: the room the file was read into is detached once saveData() returns. Its size was
    // read after that, and a file went into the snapshot with size 0 and one chunk
    const callbacks: ((err: unknown) => void)[] = [];
    const writer = {
      copiesData: true,
      known: () => false,
      reserve: (n: number) => Buffer.allocUnsafeSlow(n),
      save: () => Promise.reject(new Error('not this path')),
      saveData: (_id: Uint8Array, _hex: string, data: Uint8Array, _opts: unknown, done: (err: unknown) => void) => {
        structuredClone(data.buffer, { transfer: [data.buffer as ArrayBuffer] });
        callbacks.push(done);
        return true;
      },
    };
    const saver = new FileSaver(writer, repo.hasher, repo.gear, DEFAULT_CHUNKER_PARAMS, new ByteBudget(1 << 20));
    const file = path.join(dir, 'detached');
    const data = randomBytes(3000);
    await writeFile(file, data);
    const viaSave = await saver.save(fromUserPath(file), data.length);
    const viaNow = saver.saveSmallNow(fromUserPath(file), data.length);
    const fd = openSync(file, 'r');
    let viaFd;
    try {
      viaFd = saver.saveSmallNowFd(fd, data.length);
    } finally {
      closeSync(fd);
    }
    for (const saved of [viaSave, viaNow, viaFd]) {
      expect(saved?.sizeBytes).toBe(3000);
      expect(saved?.content).toEqual([repo.hasher.id(data)]);
    }
    expect(callbacks).toHaveLength(3);
    for (const done of callbacks) done(undefined);
    await saver.drain();
  });

  it('drain() rethrows the first seal failure, once every chunk has settled', async () => {
    const { writer, callbacks } = heldWriter();
    const saver = new FileSaver(writer, repo.hasher, repo.gear, PARAMS, new ByteBudget(1 << 20));
    await saveThree(saver, 'held-fail');
    const drained = saver.drain();
    drained.catch(() => undefined);
    callbacks[1]!(new Error('seal 1 failed'));
    callbacks[0]!(new Error('seal 0 failed'));
    expect(await settled(drained)).toBe(false);
    callbacks[2]!(undefined);
    await expect(drained).rejects.toThrow('seal 1 failed');
  });
});
