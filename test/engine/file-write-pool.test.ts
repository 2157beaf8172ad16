// The file-write workers restore uses (the worker script is the built
// dist/engine/file-write-worker.js): every file is created with its data, size, mode and mtime,
// across batches, whole or in parts; sealed blobs are opened and verified before anything is
// written; a file that fails says whether it exists, and the others are still written.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Codec, encodeSync, DEFAULT_COMPRESSION } from '../../src/core/codec.js';
import { IdHasher } from '../../src/core/hash.js';
import type { PackId } from '../../src/core/ids.js';
import { BlobType, blobAad, packKey } from '../../src/core/pack-format.js';
import { sealPieces } from '../../src/core/seal.js';
import { FileWritePool, type FilePart, type SealedBlob, type WholeFile } from '../../src/engine/file-write-pool.js';

let dir: string;
const pools: FileWritePool[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-write-'));
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

function newPool(workers = 2, slabBytes?: number): FileWritePool {
  const p = new FileWritePool(workers, false, { dataKey, idKey }, undefined, slabBytes);
  pools.push(p);
  return p;
}

const dataKey = randomBytes(32);
const idKey = randomBytes(32);
const hasher = new IdHasher(idKey);
const salt = randomBytes(16);

/** `data` sealed as a pack holds it: codec byte and body, under the pack's key, bound to its
 *  type and id. */
function sealed(data: Uint8Array, id = hasher.raw(data)): SealedBlob {
  const enc = encodeSync(data, DEFAULT_COMPRESSION);
  const pieces = sealPieces(packKey(dataKey, salt), [Uint8Array.of(enc.codec), enc.bytes], randomBytes, blobAad(BlobType.data, id));
  return { id, type: BlobType.data, packId: 'p'.repeat(64) as PackId, salt, rawLength: data.length, sealed: Buffer.concat(pieces) };
}

const part = (name: string, key: number, content: FilePart['content'], offset: number, last?: FilePart['last']): FilePart => ({
  path: Buffer.from(join(dir, name)),
  key,
  content,
  offset,
  ...(last ? { last } : {}),
});

/** Queues ops through `pool`; resolves with each op's outcome, in order. */
async function run(pool: FileWritePool, ops: (WholeFile | FilePart)[]): Promise<{ err: Error | undefined; created: boolean }[]> {
  const out: { err: Error | undefined; created: boolean }[] = [];
  for (const [i, op] of ops.entries()) {
    if (!pool.hasRoom) await pool.room();
    const done = (err: Error | undefined, created: boolean): void => void (out[i] = { err, created });
    if ('key' in op) pool.writePart(op, done);
    else pool.write(op, done);
  }
  await pool.drain();
  return out;
}

const file = (name: string, data: Uint8Array, extra: Partial<WholeFile> = {}): WholeFile => ({
  path: Buffer.from(join(dir, name)),
  content: data,
  offset: 0,
  size: data.length,
  mode: 0o640,
  uid: 0,
  gid: 0,
  mtime: 1_700_000_000.25,
  ...extra,
});

/** Writes `files` through `pool`; resolves with each file's outcome, in order. */
async function writeAll(pool: FileWritePool, files: WholeFile[]): Promise<{ err: Error | undefined; created: boolean }[]> {
  const out: { err: Error | undefined; created: boolean }[] = [];
  for (const [i, f] of files.entries()) {
    if (!pool.hasRoom) await pool.room();
    pool.write(f, (err, created) => (out[i] = { err, created }));
  }
  await pool.drain();
  return out;
}

describe('FileWritePool', () => {
  it('writes many files over several batches and workers, each with its data, mode and mtime', async () => {
    const pool = newPool();
    const datas = Array.from({ length: 1500 }, (_, i) => randomBytes(i % 7 === 0 ? 0 : 100 + ((i * 7919) % 9000)));
    datas.push(randomBytes(3 * 1024 * 1024)); // larger than a batch
    const files = datas.map((d, i) => file(`f${i}`, d, { mode: i % 2 ? 0o600 : 0o644 }));
    const result = await writeAll(pool, files);
    expect(result.every((r) => r.err === undefined && r.created)).toBe(true);
    for (const [i, d] of datas.entries()) {
      const p = join(dir, `f${i}`);
      expect(readFileSync(p).equals(d)).toBe(true);
      const st = statSync(p);
      expect(st.mode & 0o777).toBe(i % 2 ? 0o600 : 0o644);
      expect(st.mtimeMs).toBe(1_700_000_000_250);
    }
  });

  it('writes batches into its slab and gives each run back once written; a batch the slab has no room for gets a buffer of its own', async () => {
    // a 2 MiB slab: the 3 MiB contents never fit, and the small files' batches fill it
    const pool = newPool(2, 2 * 1024 * 1024);
    const datas = Array.from({ length: 600 }, (_, i) => randomBytes(100 + ((i * 7919) % 20_000)));
    datas.splice(100, 0, randomBytes(3 * 1024 * 1024));
    const noise = randomBytes(3 * 1024 * 1024);
    const files = [...datas.map((d, i) => file(`f${i}`, d)), file('sealed', Buffer.alloc(0), { content: sealed(noise), size: noise.length })];
    const out: { err: Error | undefined }[] = [];
    let seenInUse = 0;
    for (const [i, f] of files.entries()) {
      if (!pool.hasRoom) await pool.room();
      pool.write(f, (err) => void (out[i] = { err }));
      seenInUse = Math.max(seenInUse, pool.slabBytesInUse);
    }
    await pool.drain();
    expect(seenInUse).toBeGreaterThan(0);
    expect(pool.slabBytesInUse).toBe(0);
    expect(out.every((r) => r.err === undefined)).toBe(true);
    for (const [i, d] of datas.entries()) expect(readFileSync(join(dir, `f${i}`)).equals(d)).toBe(true);
    expect(readFileSync(join(dir, 'sealed')).equals(noise)).toBe(true);
  });

  it('gives every file its exact mode: created with it when the umask allows, else set after (set-id bits after chown)', async () => {
    const pool = newPool(1);
    const modes = [0o644, 0o666, 0o777, 0o4755, 0o2750, 0o1644, 0o000, 0o600];
    const old = process.umask(0o022);
    try {
      const result = await writeAll(pool, modes.map((mode, i) => file(`m${i}`, Buffer.from('x'), { mode })));
      expect(result.every((r) => r.err === undefined)).toBe(true);
    } finally {
      process.umask(old);
    }
    expect(modes.map((_, i) => statSync(join(dir, `m${i}`)).mode & 0o7777)).toEqual(modes);
  });

  it('leaves a leading and a trailing hole: data at its offset, the file truncated to its size', async () => {
    const pool = newPool(1);
    const data = randomBytes(5000);
    await writeAll(pool, [file('holes', data, { offset: 1 << 20, size: 4 << 20 })]);
    const bytes = readFileSync(join(dir, 'holes'));
    expect(bytes.length).toBe(4 << 20);
    expect(bytes.subarray(1 << 20, (1 << 20) + 5000).equals(data)).toBe(true);
    expect(bytes.subarray(0, 1 << 20).every((b) => b === 0)).toBe(true);
    // sparse: far fewer blocks than the size
    expect(statSync(join(dir, 'holes')).blocks * 512).toBeLessThan(1 << 20);
  });

  it('reports a file that exists or cannot be created, with its code, and writes the rest of the batch', async () => {
    const pool = newPool(1);
    writeFileSync(join(dir, 'there'), 'keep me');
    const result = await writeAll(pool, [file('a', Buffer.from('a')), file('there', Buffer.from('new')), file('no/such/dir', Buffer.from('x')), file('b', Buffer.from('b'))]);
    expect(result.map((r) => (r.err as NodeJS.ErrnoException | undefined)?.code)).toEqual([undefined, 'EEXIST', 'ENOENT', undefined]);
    expect(result.map((r) => r.created)).toEqual([true, false, false, true]);
    expect(result[1]!.err!.message).toContain(join(dir, 'there'));
    expect(readFileSync(join(dir, 'there'), 'utf8')).toBe('keep me');
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('b');
  });

  it('copies what it is given before write() returns', async () => {
    const pool = newPool(1);
    const data = Buffer.from('original');
    const f = file('copied', data);
    let outcome: Error | undefined | null = null;
    pool.write(f, (err) => (outcome = err));
    data.fill(0x41);
    (f.path as Buffer).fill(0x41, (f.path as Buffer).length - 3);
    await pool.drain();
    expect(outcome).toBeUndefined();
    expect(readFileSync(join(dir, 'copied'), 'utf8')).toBe('original');
  });

  it('fails every file in flight with the cause, and says it is broken, when a worker dies', async () => {
    const pool = new FileWritePool(1, false, {}, new URL('data:text/javascript,throw new Error("no disk today")'));
    pools.push(pool);
    expect(pool.broken).toBeUndefined();
    const result = await writeAll(pool, [file('a', Buffer.from('a')), file('b', Buffer.from('b'))]);
    expect(result.map((r) => r.err?.message)).toEqual(['file-write worker failed: no disk today', 'file-write worker failed: no disk today']);
    expect(result.every((r) => r.err === pool.broken && !r.created)).toBe(true);
  });

  it('writes a file of several parts in any order, creating it with the first and finishing it with the last', async () => {
    const pool = newPool();
    const [a, b, c] = [randomBytes(3000), randomBytes(5000), randomBytes(7000)];
    const meta = { size: 20_000, mode: 0o604, uid: 0, gid: 0, mtime: 1_700_000_123.5 };
    const result = await run(pool, [part('parts', 7, b, 3000), part('parts', 7, c, 8000), part('parts', 7, a, 0, meta)]);
    expect(result.map((r) => [r.err, r.created])).toEqual([[undefined, true], [undefined, false], [undefined, false]]);
    const back = readFileSync(join(dir, 'parts'));
    // the last part's metadata: a trailing hole up to the size, mode and mtime
    expect(back.equals(Buffer.concat([a, b, c, Buffer.alloc(5000)]))).toBe(true);
    expect(statSync(join(dir, 'parts')).mode & 0o777).toBe(0o604);
    expect(statSync(join(dir, 'parts')).mtimeMs).toBe(1_700_000_123_500);
  });

  it('writes the spread parts of a file on every worker once its first part made it, and finishes it after them all', async () => {
    const pool = newPool(2);
    const parts = Array.from({ length: 24 }, () => randomBytes(64 * 1024));
    const size = parts.length * 64 * 1024 + 1000;
    const meta = { size, mode: 0o640, uid: 0, gid: 0, mtime: 1_700_000_042.5 };
    const first = await run(pool, [part('spread', 9, parts[0]!, 0)]);
    expect(first[0]).toEqual({ err: undefined, created: true });
    // the rest, last first, each batch to the least busy worker (1 MiB batches: 16 parts each)
    const rest = parts.map((d, i) => ({ ...part('spread', 9, d, i * 64 * 1024), spread: true })).slice(1).reverse();
    const sentBefore = pool.batchesPerWorker;
    const written = await run(pool, rest);
    expect(written.filter((r) => r.err || r.created)).toEqual([]);
    const sent = pool.batchesPerWorker.map((n, i) => n - (sentBefore[i] ?? 0));
    expect(sent.filter((n) => n > 0)).toHaveLength(2);
    // not finished yet: no trailing hole, the mode it was created with
    expect(statSync(join(dir, 'spread')).size).toBe(parts.length * 64 * 1024);
    expect(statSync(join(dir, 'spread')).mode & 0o777).toBe(0o600);
    let finished: { err: Error | undefined } | undefined;
    pool.finish({ path: Buffer.from(join(dir, 'spread')), key: 9, last: meta }, (err) => (finished = { err }));
    await pool.drain();
    expect(finished).toEqual({ err: undefined });
    expect(readFileSync(join(dir, 'spread')).equals(Buffer.concat([...parts, Buffer.alloc(1000)]))).toBe(true);
    expect(statSync(join(dir, 'spread')).mode & 0o777).toBe(0o640);
    expect(statSync(join(dir, 'spread')).mtimeMs).toBe(1_700_000_042_500);
  });

  it('never creates a file with a spread part, and removes a file whose spread part fails once it is abandoned', async () => {
    const pool = newPool(2);
    const [missing] = await run(pool, [{ ...part('not-made', 4, randomBytes(100), 100), spread: true }]);
    expect(missing!.err).toMatchObject({ code: 'ENOENT' });
    expect(existsSync(join(dir, 'not-made'))).toBe(false);
    expect(() => pool.writePart({ ...part('x', 5, randomBytes(10), 0, { size: 10, mode: 0o600, uid: 0, gid: 0, mtime: 0 }), spread: true }, () => undefined)).toThrow(RangeError);
    const made = await run(pool, [part('failed', 6, randomBytes(100), 0)]);
    expect(made[0]).toEqual({ err: undefined, created: true });
    // a spread part that fails on a worker that did not make the file (another pool's) leaves
    // it: the worker that made it removes it when the file is abandoned
    const wrongId = sealed(randomBytes(4000), hasher.raw(Buffer.from('another blob')));
    const [bad] = await run(newPool(1), [{ ...part('failed', 6, wrongId, 100), spread: true }]);
    expect(bad!.err?.message).toMatch(/plaintext does not hash to its id/);
    expect(existsSync(join(dir, 'failed'))).toBe(true);
    pool.abandon({ path: Buffer.from(join(dir, 'failed')), key: 6 });
    await pool.drain();
    expect(existsSync(join(dir, 'failed'))).toBe(false);
  });

  it('spreads one folder\'s files over its workers a batch at a time, and sends every part of a file where its first went', async () => {
    // a restore hands over one folder after another: routed by folder, one worker got them all
    const pool = newPool(2);
    const smalls = Array.from({ length: 4 * 512 }, (_, i) => randomBytes(50 + (i % 200)));
    const parts = Array.from({ length: 20 }, () => [randomBytes(3000), randomBytes(3000), randomBytes(3000)] as const);
    const meta = { size: 9000, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
    // each file's parts far apart, batches between them
    const ops: (WholeFile | FilePart)[] = [
      ...parts.map((p, k) => part(`parts-${k}`, k, p[1], 3000)),
      ...smalls.slice(0, 1024).map((d, i) => file(`s${i}`, d)),
      ...parts.map((p, k) => part(`parts-${k}`, k, p[0], 0)),
      ...smalls.slice(1024).map((d, i) => file(`s${1024 + i}`, d)),
      ...parts.map((p, k) => part(`parts-${k}`, k, p[2], 6000, meta)),
    ];
    const result = await run(pool, ops);
    expect(result.filter((r) => r.err)).toEqual([]);
    for (const [i, d] of smalls.entries()) expect(readFileSync(join(dir, `s${i}`)).equals(d)).toBe(true);
    for (const [k, p] of parts.entries()) expect(readFileSync(join(dir, `parts-${k}`)).equals(Buffer.concat(p))).toBe(true);
    const sent = pool.batchesPerWorker;
    expect(sent).toHaveLength(2);
    expect(Math.min(...sent)).toBeGreaterThanOrEqual(2);
  });

  it('keeps at most 128 files of several parts open, and reopens one it closed without creating it again', async () => {
    const pool = newPool(1);
    const firsts = Array.from({ length: 200 }, () => randomBytes(100));
    const seconds = Array.from({ length: 200 }, () => randomBytes(100));
    const meta = { size: 200, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
    const ops = [...firsts.map((d, i) => part(`p${i}`, i, d, 0)), ...seconds.map((d, i) => part(`p${i}`, i, d, 100, meta))];
    const result = await run(pool, ops);
    expect(result.filter((r) => r.err)).toEqual([]);
    for (let i = 0; i < 200; i++) expect(readFileSync(join(dir, `p${i}`)).equals(Buffer.concat([firsts[i]!, seconds[i]!]))).toBe(true);
  });

  it('opens a sealed blob once for the files that share it, with files without content between them', async () => {
    const pool = newPool(1);
    const text = Buffer.from('shared text\n'.repeat(20_000));
    const shared = sealed(text);
    const empty = (name: string): WholeFile => ({ ...file(name, Buffer.alloc(0)), content: undefined });
    const result = await run(pool, [file('a', Buffer.alloc(0), { content: shared, size: text.length }), empty('e1'), file('b', Buffer.alloc(0), { content: shared, size: text.length }), empty('e2'), file('c', Buffer.alloc(0), { content: shared, size: text.length })]);
    expect(result.map((r) => r.err?.message)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    for (const n of ['a', 'b', 'c']) expect(readFileSync(join(dir, n)).equals(text)).toBe(true);
    expect(statSync(join(dir, 'e1')).size).toBe(0);
  });

  it('opens and verifies sealed blobs, one content shared by several files, compressed or not', async () => {
    const pool = newPool();
    const text = Buffer.from('a line of text that compresses\n'.repeat(5000));
    const noise = randomBytes(3 << 20); // above the worker's 2 MiB decode buffer, stored raw
    const shared = sealed(text);
    expect(encodeSync(text, DEFAULT_COMPRESSION).codec).toBe(Codec.zstd);
    const result = await run(pool, [file('t1', Buffer.alloc(0), { content: shared, size: text.length }), file('t2', Buffer.alloc(0), { content: shared, size: text.length }), file('n', Buffer.alloc(0), { content: sealed(noise), size: noise.length })]);
    expect(result.every((r) => r.err === undefined && r.created)).toBe(true);
    expect(readFileSync(join(dir, 't1')).equals(text)).toBe(true);
    expect(readFileSync(join(dir, 't2')).equals(text)).toBe(true);
    expect(readFileSync(join(dir, 'n')).equals(noise)).toBe(true);
  });

  it('writes nothing of a sealed blob that does not verify: a whole file is not created, a file of parts is removed and its later parts fail', async () => {
    const pool = newPool(1);
    const bad = sealed(randomBytes(4000));
    const flipped = Buffer.from(bad.sealed);
    flipped[100]! ^= 1;
    const tampered = { ...bad, sealed: flipped };
    // sealed (and so authenticated) under an id its plaintext does not hash to
    const wrongId = sealed(randomBytes(4000), hasher.raw(Buffer.from('another blob')));
    const good = randomBytes(4000);
    const meta = { size: 12_000, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
    const result = await run(pool, [
      file('whole-bad', Buffer.alloc(0), { content: tampered, size: 4000 }),
      part('parts-bad', 1, good, 0),
      part('parts-bad', 1, wrongId, 4000),
      part('parts-bad', 1, good, 8000, meta),
      file('after', good),
    ]);
    expect(result[0]!.err?.message).toMatch(/^blob [0-9a-f]{12} in pack pppppppppppp: authentication failed/);
    expect(result[0]!.created).toBe(false);
    expect(result[1]).toEqual({ err: undefined, created: true });
    expect(result[2]!.err?.message).toMatch(/plaintext does not hash to its id/);
    expect(result[3]!.err?.message).toContain('an earlier part of it failed');
    expect(result[4]).toEqual({ err: undefined, created: true });
    expect(existsSync(join(dir, 'whole-bad'))).toBe(false);
    expect(existsSync(join(dir, 'parts-bad'))).toBe(false);
    expect(readFileSync(join(dir, 'after')).equals(good)).toBe(true);
  });

  it('abandons a file of parts after the parts queued before it: closed and removed', async () => {
    const pool = newPool(1);
    const started = await run(pool, [part('given-up', 3, randomBytes(100), 0)]);
    expect(started[0]).toEqual({ err: undefined, created: true });
    expect(existsSync(join(dir, 'given-up'))).toBe(true);
    pool.abandon({ path: Buffer.from(join(dir, 'given-up')), key: 3 });
    const later = await run(pool, [part('given-up', 3, randomBytes(100), 100)]);
    expect(existsSync(join(dir, 'given-up'))).toBe(false);
    expect(later[0]!.err?.message).toContain('an earlier part of it failed');
  });

  it('closes the files of parts it still has open when it is closed', async () => {
    const pool = newPool(1);
    await run(pool, [part('open', 1, randomBytes(100), 0)]);
    const path = join(dir, 'open');
    const openOn = (): number =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === path;
        } catch {
          return false; // closed meanwhile
        }
      }).length;
    expect(openOn()).toBe(1);
    await pool.close();
    expect(openOn()).toBe(0);
  });

  it('fails writes after close', async () => {
    const pool = newPool(1);
    await pool.close();
    let err: Error | undefined;
    pool.write(file('late', Buffer.from('x')), (e) => (err = e));
    expect(err?.message).toBe('file-write pool closed');
  });
});
