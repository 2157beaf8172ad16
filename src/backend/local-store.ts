import * as nodeFs from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CairnError, IntegrityError, NotFoundError, PermanentError, errnoCode, fileSystemError } from '../core/errors.js';
import { BLOB_KINDS, TEMP_NAME, tempName } from '../repo/blob-store.js';
import type { BlobInfo, BlobKind, BlobRef, BlobStore, ByteRange, GetOptions, Op, PutOptions } from '../repo/blob-store.js';

/** File metadata LocalBlobStore reads (node's Stats and memfs's both fit). */
export interface LocalStats {
  readonly size: number | bigint;
  readonly mtimeMs: number | bigint;
  isFile(): boolean;
}

/** The FileHandle methods LocalBlobStore uses; `sync` is preferred and `datasync` the fallback. */
export interface LocalFileHandle {
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  sync?(): Promise<void>;
  datasync(): Promise<void>;
  stat(): Promise<LocalStats>;
  close(): Promise<void>;
}

/** The node:fs/promises functions LocalBlobStore uses; memfs's `vol.promises` fits too. */
export interface LocalFs {
  mkdir(path: string, opts: { recursive: true; mode?: number }): Promise<string | undefined>;
  open(path: string, flags: string, mode?: number): Promise<LocalFileHandle>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  stat(path: string): Promise<LocalStats>;
  readdir(path: string): Promise<readonly unknown[]>;
}

/** Options of LocalBlobStore. */
export interface LocalBlobStoreOptions {
  /** The file system to use; defaults to node:fs/promises. */
  readonly fs?: LocalFs;
}

const NAME = /^[0-9a-z][0-9a-z._-]*$/;
const CONFIG_NAME = 'cairn.json';

/** Directory fsync is refused by some platforms and file systems; durability is then best effort. */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM']);

/** True when `name` is a valid blob name of `kind` (temp files, starting with '.', never are). */
export function isValidBlobName(kind: BlobKind, name: string): boolean {
  return kind === 'config' ? name === CONFIG_NAME : NAME.test(name) && !name.includes('..');
}

/** Throws a PermanentError (E_USAGE) unless `kind` is one of BLOB_KINDS. */
export function assertBlobKind(kind: BlobKind): void {
  if (!BLOB_KINDS.includes(kind)) throw new PermanentError(`unknown blob kind ${JSON.stringify(kind)}`, { code: 'E_USAGE' });
}

/** Throws a PermanentError (E_USAGE) unless `ref` names a valid blob. */
export function assertBlobRef(ref: BlobRef): void {
  assertBlobKind(ref.kind);
  if (!isValidBlobName(ref.kind, ref.name)) {
    const rule = ref.kind === 'config' ? `must be "${CONFIG_NAME}"` : `must match ${NAME.source} without ".."`;
    throw new PermanentError(`invalid ${ref.kind} blob name ${JSON.stringify(ref.name)}: ${rule}`, { code: 'E_USAGE' });
  }
}

/** Throws unless `range` lies within an object of `sizeBytes` (IntegrityError when it runs past the end). */
export function checkRange(range: ByteRange, sizeBytes: number, what: string): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new PermanentError(`invalid byte range offset ${offset} length ${length} for ${what}`, { code: 'E_USAGE' });
  }
  if (offset + length > sizeBytes) {
    throw new IntegrityError(`short read of ${what}: range [${offset}, ${offset + length}) runs past its end at ${sizeBytes} bytes`);
  }
}

function missingOr(verb: string, path: string, err: unknown): unknown {
  return errnoCode(err) === 'ENOENT' ? new NotFoundError(`no blob at ${path}`, { cause: err }) : fileSystemError(verb, path, err);
}

async function syncHandle(fh: LocalFileHandle): Promise<void> {
  await (fh.sync ? fh.sync() : fh.datasync());
}

async function writeAll(fh: LocalFileHandle, body: Uint8Array, signal?: AbortSignal): Promise<void> {
  for (let done = 0; done < body.byteLength;) {
    signal?.throwIfAborted();
    const { bytesWritten } = await fh.write(body, done, body.byteLength - done, done);
    if (bytesWritten <= 0) throw new CairnError('E_IO', `write made no progress at byte ${done}`);
    done += bytesWritten;
  }
}

/**
 * A BlobStore over a local folder (format v1 layout: `cairn.json`, `keys/`, `data/<2 chars>/`,
 * `index/`, `snapshots/`, `deleted/`, `locks/`). put writes a `.tmp-*` file in the target folder,
 * fsyncs it and renames it into place (ifNoneMatch: hard-links it, which fails if the name exists).
 */
export class LocalBlobStore implements BlobStore {
  readonly location: string;
  /** The repository's own folder, on a real file system (a store over another LocalFs, such as
   *  memfs, has none: a writer's threads could not write there). putFile renames a file from it
   *  into place. */
  readonly stagingDir: string | undefined;
  readonly #root: string;
  readonly #fs: LocalFs;

  constructor(root: string, opts: LocalBlobStoreOptions = {}) {
    this.#root = resolve(root);
    this.#fs = opts.fs ?? nodeFs;
    this.location = `local:${this.#root}`;
    this.stagingDir = opts.fs === undefined ? this.#root : undefined;
  }

  /** The file that holds `ref`, after validating its name. */
  pathOf(ref: BlobRef): string {
    assertBlobRef(ref);
    if (ref.kind === 'config') return join(this.#root, CONFIG_NAME);
    if (ref.kind === 'data') return join(this.#root, 'data', ref.name.slice(0, 2), ref.name);
    return join(this.#root, ref.kind, ref.name);
  }

  async put(ref: BlobRef, body: Uint8Array, opts: PutOptions = {}): Promise<void> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const path = this.pathOf(ref);
    const dir = dirname(path);
    const tmp = join(dir, tempName());
    let tmpCreated = false;
    try {
      const firstCreated = await this.#fs.mkdir(dir, { recursive: true, mode: 0o700 });
      if (firstCreated !== undefined) await this.#syncNewDirs(firstCreated, dir);
      signal?.throwIfAborted();
      const fh = await this.#fs.open(tmp, 'wx', 0o600);
      tmpCreated = true;
      try {
        await writeAll(fh, body, signal);
        await syncHandle(fh);
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
      await fh.close();
      signal?.throwIfAborted();
      await this.#commit(tmp, path, opts.ifNoneMatch === true);
    } catch (err) {
      if (tmpCreated) await this.#fs.unlink(tmp).catch(() => undefined);
      throw fileSystemError('writing', path, err, signal);
    }
    await this.#syncDir(dir);
  }

  /** Makes the staged `file` durable and renames it into place (hard-links it for ifNoneMatch):
   *  the bytes are never copied. */
  async putFile(ref: BlobRef, file: string, opts: PutOptions = {}): Promise<void> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const path = this.pathOf(ref);
    const dir = dirname(path);
    try {
      const firstCreated = await this.#fs.mkdir(dir, { recursive: true, mode: 0o700 });
      if (firstCreated !== undefined) await this.#syncNewDirs(firstCreated, dir);
      const fh = await this.#fs.open(file, 'r');
      try {
        await syncHandle(fh);
      } finally {
        await fh.close().catch(() => undefined);
      }
      signal?.throwIfAborted();
      await this.#commit(file, path, opts.ifNoneMatch === true);
    } catch (err) {
      throw fileSystemError('writing', path, err, signal);
    }
    // the new name is durable with its folder (the staging folder's lost entry needs no sync:
    // after a crash it would only bring back a .tmp- name, which readers ignore)
    await this.#syncDir(dir);
  }

  async sweepStaging(olderThanMs: number, opts: Op = {}): Promise<number> {
    if (this.stagingDir === undefined) return 0;
    const dir = this.stagingDir;
    const before = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of await this.#readdir(dir)) {
      opts.signal?.throwIfAborted();
      if (!TEMP_NAME.test(name)) continue;
      const path = join(dir, name);
      const st = await this.#fs.stat(path).catch(() => undefined);
      if (!st?.isFile() || Number(st.mtimeMs) >= before) continue;
      await this.#fs.unlink(path).then(
        () => removed++,
        (err: unknown) => {
          if (errnoCode(err) !== 'ENOENT') throw fileSystemError('removing', path, err);
        },
      );
    }
    return removed;
  }

  async get(ref: BlobRef, range?: ByteRange, opts: GetOptions = {}): Promise<Uint8Array> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const path = this.pathOf(ref);
    const fh = await this.#fs.open(path, 'r').catch((err: unknown) => { throw missingOr('reading', path, err); });
    try {
      const sizeBytes = Number((await fh.stat()).size);
      const { offset, length } = range ?? { offset: 0, length: sizeBytes };
      checkRange({ offset, length }, sizeBytes, path);
      const out = opts.into && opts.into.length >= length ? opts.into.subarray(0, length) : new Uint8Array(length);
      for (let done = 0; done < length;) {
        signal?.throwIfAborted();
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead <= 0) throw new IntegrityError(`short read of ${path}: ${done} of ${length} bytes from offset ${offset}`);
        done += bytesRead;
      }
      return out;
    } catch (err) {
      throw fileSystemError('reading', path, err, signal);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async stat(ref: BlobRef, opts: Op = {}): Promise<BlobInfo> {
    opts.signal?.throwIfAborted();
    const path = this.pathOf(ref);
    const st = await this.#fs.stat(path).catch((err: unknown) => { throw missingOr('reading metadata of', path, err); });
    return { ref: { kind: ref.kind, name: ref.name }, sizeBytes: Number(st.size), modifiedMs: Number(st.mtimeMs) };
  }

  async *list(kind: BlobKind, opts: Op = {}): AsyncIterable<BlobInfo> {
    const { signal } = opts;
    signal?.throwIfAborted();
    assertBlobKind(kind);
    if (kind === 'config') {
      const info = await this.stat({ kind, name: CONFIG_NAME }, opts).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (info) yield info;
      return;
    }
    const top = join(this.#root, kind);
    const dirs = kind === 'data' ? (await this.#readdir(top)).filter((d) => !d.startsWith('.')).map((d) => join(top, d)) : [top];
    for (const dir of dirs) {
      for (const name of await this.#readdir(dir)) {
        signal?.throwIfAborted();
        if (!isValidBlobName(kind, name)) continue;
        const ref: BlobRef = { kind, name };
        if (this.pathOf(ref) !== join(dir, name)) continue;
        const st = await this.#fs.stat(join(dir, name)).catch((err: unknown) => {
          if (errnoCode(err) === 'ENOENT') return undefined;
          throw fileSystemError('listing', dir, err);
        });
        if (st?.isFile()) yield { ref, sizeBytes: Number(st.size), modifiedMs: Number(st.mtimeMs) };
      }
    }
  }

  async delete(ref: BlobRef, opts: Op = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    const path = this.pathOf(ref);
    await this.#fs.unlink(path).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw fileSystemError('deleting', path, err);
    });
  }

  async #commit(tmp: string, path: string, exclusive: boolean): Promise<void> {
    if (!exclusive) return this.#fs.rename(tmp, path);
    await this.#fs.link(tmp, path).catch((err: unknown) => {
      if (errnoCode(err) === 'EEXIST') throw new CairnError('E_BLOB_EXISTS', `${path} already exists`, { cause: err });
      throw err;
    });
    // The blob is in place: a temp name left behind is harmless (list skips it), a failed put is not.
    await this.#fs.unlink(tmp).catch(() => undefined);
  }

  /** Entry names of `dir` as strings; a missing folder (or a file where one was expected) has none. */
  async #readdir(dir: string): Promise<string[]> {
    const entries = await this.#fs.readdir(dir).catch((err: unknown) => {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw fileSystemError('listing', dir, err);
    });
    return entries.map((e) => (typeof e === 'string' ? e : String(e)));
  }

  /** Makes durable the entries of the folders mkdir just created, by syncing each one's parent. */
  async #syncNewDirs(firstCreated: string, dir: string): Promise<void> {
    for (let d = dir; ; d = dirname(d)) {
      await this.#syncDir(dirname(d));
      if (d === firstCreated || dirname(d) === d) return;
    }
  }

  async #syncDir(dir: string): Promise<void> {
    try {
      const fh = await this.#fs.open(dir, 'r');
      try {
        if (typeof fh.sync !== 'function' && typeof fh.datasync !== 'function') return;
        await syncHandle(fh);
      } finally {
        await fh.close().catch(() => undefined);
      }
    } catch (err) {
      if (!DIR_SYNC_UNSUPPORTED.has(errnoCode(err) ?? '')) throw fileSystemError('syncing folder', dir, err);
    }
  }
}

/** Opens (without I/O) a LocalBlobStore over the folder `root`. */
export function createLocalStore(root: string, opts: LocalBlobStoreOptions = {}): LocalBlobStore {
  return new LocalBlobStore(root, opts);
}
