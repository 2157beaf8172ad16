import * as nodeFs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume, createFsFromVolume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore, createLocalStore } from '../../src/backend/index.js';
import type { LocalFileHandle, LocalFs } from '../../src/backend/index.js';
import { CairnError, PermanentError } from '../../src/core/errors.js';
import type { BlobRef } from '../../src/repo/blob-store.js';
import { runBlobStoreContract } from './blob-store-contract.js';

async function tempRoot(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await nodeFs.mkdtemp(join(tmpdir(), 'cairn-local-store-'));
  return { root, cleanup: () => nodeFs.rm(root, { recursive: true, force: true }) };
}

function memfs(): { vol: Volume; fs: LocalFs } {
  const vol = new Volume();
  return { vol, fs: createFsFromVolume(vol).promises };
}

runBlobStoreContract(
  'LocalBlobStore on a temp dir',
  async () => {
    const { root, cleanup } = await tempRoot();
    return { store: createLocalStore(root), cleanup };
  },
  { stagesFiles: true },
);

runBlobStoreContract('LocalBlobStore on memfs', async () => ({ store: createLocalStore('/repo', { fs: memfs().fs }) }), { stagesFiles: false });

function errno(code: string, syscall: string): Error {
  return Object.assign(new Error(`${code}: simulated, ${syscall}`), { code, syscall });
}

/** A LocalFs that delegates to `base`; `hooks` may replace file-handle calls on files opened for writing. */
function wrapFs(base: LocalFs, hooks: { open?: LocalFs['open']; onWrite?: () => void; onSync?: () => void } = {}): LocalFs {
  return {
    mkdir: (p, o) => base.mkdir(p, o),
    rename: (a, b) => base.rename(a, b),
    link: (a, b) => base.link(a, b),
    unlink: (p) => base.unlink(p),
    stat: (p) => base.stat(p),
    readdir: (p) => base.readdir(p),
    async open(path, flags, mode) {
      const fh = await (hooks.open ?? base.open.bind(base))(path, flags, mode);
      if (!flags.startsWith('w')) return fh;
      const handle: LocalFileHandle = {
        write: async (...args) => { hooks.onWrite?.(); return fh.write(...args); },
        read: (...args) => fh.read(...args),
        sync: async () => { hooks.onSync?.(); await (fh.sync ? fh.sync() : fh.datasync()); },
        datasync: () => fh.datasync(),
        stat: () => fh.stat(),
        close: () => fh.close(),
      };
      return handle;
    },
  };
}

/** Throws `code` the first time it is called. */
function failOnce(code: string, syscall: string): () => void {
  let armed = true;
  return () => {
    if (armed) {
      armed = false;
      throw errno(code, syscall);
    }
  };
}

const blob = (kind: BlobRef['kind'], name: string): BlobRef => ({ kind, name });

describe('LocalBlobStore', () => {
  it.each<[BlobRef, string]>([
    [blob('config', 'cairn.json'), 'cairn.json'],
    [blob('keys', 'k1'), 'keys/k1'],
    [blob('data', 'abcdef01'), 'data/ab/abcdef01'],
    [blob('index', 'i1'), 'index/i1'],
    [blob('snapshots', 's1'), 'snapshots/s1'],
    [blob('deleted', 'd1'), 'deleted/d1'],
    [blob('locks', 'l1'), 'locks/l1'],
  ])('stores %o at <root>/%s, on disk and on memfs', async (ref, rel) => {
    const { root, cleanup } = await tempRoot();
    try {
      const mem = memfs();
      for (const [fs, r] of [[nodeFs, root], [mem.fs, '/repo']] as const) {
        await createLocalStore(r, { fs }).put(ref, new TextEncoder().encode(rel));
        expect(Buffer.from(await readWhole(fs, join(r, rel))).toString()).toBe(rel);
        expect((await fs.readdir(join(r, rel, '..'))).filter((n) => String(n).startsWith('.'))).toEqual([]);
      }
    } finally {
      await cleanup();
    }
  });

  it('sweeps staged files nobody wrote for the given age, and nothing else', async () => {
    const { root, cleanup } = await tempRoot();
    try {
      const store = new LocalBlobStore(root);
      expect(store.stagingDir).toBe(root);
      const old = Date.now() / 1000 - 2 * 86400;
      const names = ['.tmp-0123456789abcdef', '.tmp-fedcba9876543210', '.tmp-short', 'cairn.json', 'keep.tmp-0123456789abcdef'];
      for (const n of names) await nodeFs.writeFile(join(root, n), 'x');
      for (const n of ['.tmp-0123456789abcdef', '.tmp-short', 'cairn.json', 'keep.tmp-0123456789abcdef']) await nodeFs.utimes(join(root, n), old, old);
      expect(await store.sweepStaging(86400_000)).toBe(1);
      expect((await nodeFs.readdir(root)).sort()).toEqual(['.tmp-fedcba9876543210', '.tmp-short', 'cairn.json', 'keep.tmp-0123456789abcdef']);
      // on memfs there is no staging folder, and nothing to sweep
      expect(await createLocalStore('/repo', { fs: memfs().fs }).sweepStaging(0)).toBe(0);
    } finally {
      await cleanup();
    }
  });

  it('lists no temp files, stray names or misplaced data', async () => {
    const { vol, fs } = memfs();
    vol.fromJSON({
      '/repo/index/.tmp-0123abcd': 'partial', '/repo/index/README.TXT': 'x',
      '/repo/data/.tmp-9': 'partial', '/repo/data/zz/ab12': 'misplaced', '/repo/data/ab/.tmp-1': 'partial',
    });
    const store = createLocalStore('/repo', { fs });
    await store.put(blob('index', 'i1'), new Uint8Array(3));
    await store.put(blob('data', 'ab34'), new Uint8Array(4));
    for (const [kind, expected] of [['index', ['i1']], ['data', ['ab34']]] as const) {
      const names: string[] = [];
      for await (const info of store.list(kind)) names.push(info.ref.name);
      expect(names).toEqual(expected);
    }
  });

  it.each([
    ['write', 'ENOSPC', 'no space left on device'],
    ['sync', 'ENOSPC', 'no space left on device'],
    ['write', 'EDQUOT', 'disk quota exceeded'],
    ['write', 'EACCES', 'permission denied'],
    ['sync', 'EROFS', 'read-only file system'],
  ])('fails a put whose %s throws %s permanently, naming the path, and leaves no temp file', async (step, code, cause) => {
    const { vol, fs } = memfs();
    const fail = failOnce(code, step);
    const store = createLocalStore('/repo', { fs: wrapFs(fs, step === 'write' ? { onWrite: fail } : { onSync: fail }) });
    const err: unknown = await store.put(blob('data', 'abcdef'), new Uint8Array(100)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'E_IO', retryable: false, hint: expect.any(String) });
    expect((err as Error).message).toContain(cause);
    expect((err as Error).message).toContain('/repo/data/ab/abcdef');
    expect((err as Error).cause).toMatchObject({ code });
    expect(vol.readdirSync('/repo/data/ab')).toEqual([]);
    await store.put(blob('data', 'abcdef'), new Uint8Array(100));
    expect(vol.readdirSync('/repo/data/ab')).toEqual(['abcdef']);
  });

  it('wraps other I/O errors with the path, keeping the cause', async () => {
    const { vol, fs } = memfs();
    const store = createLocalStore('/repo', { fs: wrapFs(fs, { onWrite: failOnce('EIO', 'write') }) });
    const err: unknown = await store.put(blob('keys', 'k1'), new Uint8Array(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CairnError);
    expect(err).toMatchObject({ code: 'E_IO', message: expect.stringContaining('/repo/keys/k1'), cause: { code: 'EIO' } });
    expect(vol.readdirSync('/repo/keys')).toEqual([]);
  });

  it('leaves no temp file when aborted mid-put', async () => {
    const { vol, fs } = memfs();
    const ctl = new AbortController();
    const store = createLocalStore('/repo', { fs: wrapFs(fs, { onWrite: () => ctl.abort() }) });
    const err: unknown = await store.put(blob('snapshots', 's1'), new Uint8Array(10), { signal: ctl.signal }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(vol.readdirSync('/repo/snapshots')).toEqual([]);
  });

  it.each(['EISDIR', 'EINVAL', 'EPERM'])('completes a put when folder fsync is refused with %s', async (code) => {
    const { fs } = memfs();
    const open: LocalFs['open'] = async (path, flags, mode) => {
      if (flags === 'r' && !(await fs.stat(path)).isFile()) throw errno(code, 'open');
      return fs.open(path, flags, mode);
    };
    const store = createLocalStore('/repo', { fs: wrapFs(fs, { open }) });
    await store.put(blob('locks', 'l1'), new Uint8Array([1, 2]), { ifNoneMatch: true });
    expect([...(await store.get(blob('locks', 'l1')))]).toEqual([1, 2]);
  });

  it('rejects "../x" before touching the file system', async () => {
    const { vol, fs } = memfs();
    const store = createLocalStore('/repo/sub', { fs });
    const err: unknown = await store.put(blob('keys', '../x'), new Uint8Array(1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_USAGE', retryable: false });
    expect(vol.toJSON()).toEqual({});
  });

  it('does no I/O when constructed', () => {
    const noFs = new Proxy({} as LocalFs, { get: () => { throw new Error('I/O in constructor'); } });
    expect(new LocalBlobStore('/nowhere', { fs: noFs }).location).toBe('local:/nowhere');
  });
});

async function readWhole(fs: LocalFs, path: string): Promise<Uint8Array> {
  const fh = await fs.open(path, 'r');
  try {
    const out = new Uint8Array(Number((await fh.stat()).size));
    await fh.read(out, 0, out.byteLength, 0);
    return out;
  } finally {
    await fh.close();
  }
}
