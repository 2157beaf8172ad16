// The file-write workers restore uses for whole files (the worker script is the built
// dist/engine/file-write-worker.js): every file is created with its data, size, mode and mtime,
// across batches; a file that fails says whether it exists, and the others are still written.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWritePool, type WholeFile } from '../../src/engine/file-write-pool.js';

let dir: string;
const pools: FileWritePool[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-write-'));
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

function newPool(workers = 2): FileWritePool {
  const p = new FileWritePool(workers, false);
  pools.push(p);
  return p;
}

const file = (name: string, data: Uint8Array, extra: Partial<WholeFile> = {}): WholeFile => ({
  path: Buffer.from(join(dir, name)),
  lane: 0,
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

  it('fails writes after close', async () => {
    const pool = newPool(1);
    await pool.close();
    let err: Error | undefined;
    pool.write(file('late', Buffer.from('x')), (e) => (err = e));
    expect(err?.message).toBe('file-write pool closed');
  });
});
