import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lchown, link, lutimes, mkdir, open, readdir, symlink, chmod, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { mapBounded, mapBoundedIter } from '../core/bounded.js';
import { CairnError } from '../core/errors.js';
import type { BlobId } from '../core/ids.js';
import { BlobType } from '../core/pack-format.js';
import type { Snapshot } from '../core/snapshot-format.js';
import { type TreeNode, nameBytes, nodeByteName } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { Repository } from '../repo/repository.js';
import { type BytePath, NO_PROGRESS, type ProgressSink, displayPath, fromUserPath, toFsPath } from './progress.js';
import { TreeLoader } from './tree-loader.js';

const execFileAsync = promisify(execFile);

/** Where and what to restore. */
export interface RestoreOptions extends Op {
  readonly target: string;
  /** Absolute paths inside the snapshot to restore (with everything under them); all if empty. */
  readonly includes?: readonly string[];
  /** Restore into a target that is not empty, replacing files of the same name. */
  readonly overwrite?: boolean;
  /** Restore owners (uid/gid); the default is to do so only when running as root. */
  readonly owners?: boolean;
  readonly progress?: ProgressSink;
  readonly concurrency?: number;
}

/** What a restore did. */
export interface RestoreResult {
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: { path: string; message: string }[];
}

/** Blobs of one file fetched ahead of the one being written. */
const PREFETCH = 4;

/** Restores a snapshot (or the sub-paths in `includes`) under `target`, recreating each backed-up
 *  absolute path P as target/P: contents (holes left sparse), modes, owners (as root), mtimes,
 *  symlinks, hard links, empty directories. Every blob is authenticated and checked against its
 *  id as it is read. Entries that fail are reported and skipped. */
export async function restore(repo: Repository, snapshot: Snapshot, opts: RestoreOptions): Promise<RestoreResult> {
  const target = path.resolve(opts.target);
  await checkTarget(target, opts.overwrite === true);
  const includes = (opts.includes ?? []).map((p) => fromUserPath(path.resolve('/', p)).replace(/\/+$/, '') || '/');
  const progress = opts.progress ?? NO_PROGRESS;
  progress.setTotal(snapshot.summary.filesNew + snapshot.summary.filesChanged + snapshot.summary.filesUnmodified, snapshot.summary.bytesTotal);
  const r = new Restorer(repo, opts, progress, includes);
  await mkdir(target, { recursive: true });
  await r.dir(snapshot.tree, '', fromUserPath(target));
  if (includes.length > 0 && r.result.files + r.result.dirs === 0) {
    throw new CairnError('E_PATH_NOT_FOUND', `none of ${includes.map(displayPath).join(', ')} is in the snapshot`, { hint: 'list its paths with cairn ls' });
  }
  return r.result;
}

async function checkTarget(target: string, overwrite: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new CairnError('E_USAGE', `restore target ${target} is a file, not a directory`);
    throw err;
  }
  if (entries.length > 0 && !overwrite) {
    throw new CairnError('E_TARGET_NOT_EMPTY', `restore target ${target} is not empty`, { hint: 'choose an empty or new directory, or pass --overwrite to replace what is there' });
  }
}

type Selection = 'all' | 'ancestor' | 'none';

class Restorer {
  readonly result: RestoreResult = { files: 0, dirs: 0, bytes: 0, errors: [] };
  readonly #repo: Repository;
  readonly #opts: RestoreOptions;
  readonly #progress: ProgressSink;
  readonly #includes: readonly BytePath[];
  readonly #trees: TreeLoader;
  readonly #owners: boolean;
  readonly #links = new Map<string, Promise<BytePath | undefined>>();

  constructor(repo: Repository, opts: RestoreOptions, progress: ProgressSink, includes: readonly BytePath[]) {
    this.#repo = repo;
    this.#opts = opts;
    this.#progress = progress;
    this.#includes = includes;
    this.#trees = new TreeLoader(repo.reader);
    this.#owners = opts.owners ?? process.getuid?.() === 0;
  }

  #select(snapPath: BytePath): Selection {
    if (this.#includes.length === 0) return 'all';
    if (this.#includes.some((inc) => inc === '/' || snapPath === inc || snapPath.startsWith(inc + '/'))) return 'all';
    if (this.#includes.some((inc) => inc.startsWith(snapPath + '/'))) return 'ancestor';
    return 'none';
  }

  /** Restores the children of tree `id` found at snapshot path `snapPath` into `dest`. */
  async dir(id: BlobId, snapPath: BytePath, dest: BytePath): Promise<void> {
    const { signal } = this.#opts;
    const tree = await this.#trees.load(id, { signal });
    await mapBounded(tree.nodes, this.#opts.concurrency ?? 8, async (node) => {
      const name = nodeByteName(node);
      if (name.includes('/') || name === '..' || name === '.' || name === '') {
        this.#fail(`${snapPath}/${name}`, new CairnError('E_INTEGRITY', 'tree entry has an unsafe name; skipped'));
        return;
      }
      const childSnap = `${snapPath}/${name}`;
      const sel = this.#select(childSnap);
      if (sel === 'none' || (sel === 'ancestor' && node.type !== 'dir')) return;
      try {
        await this.#node(node, childSnap, `${dest}/${name}`, sel);
      } catch (err) {
        if (signal?.aborted) throw err;
        this.#fail(childSnap, err);
      }
    });
  }

  async #node(node: TreeNode, snapPath: BytePath, dest: BytePath, sel: Selection): Promise<void> {
    const fsDest = toFsPath(dest);
    switch (node.type) {
      case 'dir':
        await mkdir(fsDest).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        if (node.subtree) await this.dir(node.subtree, snapPath, dest);
        this.result.dirs++;
        break;
      case 'file':
        await this.#file(node, dest);
        break;
      case 'symlink':
        await this.#replace(fsDest);
        await symlink(toFsPath(nameBytes(node.linkTarget ?? '', node.linkTargetRaw)), fsDest);
        break;
      case 'fifo':
        await this.#replace(fsDest);
        await execFileAsync('mkfifo', ['-m', (node.mode & 0o7777).toString(8), '--', dest], { encoding: 'latin1' });
        break;
      case 'blockdev':
      case 'chardev':
        if (!this.#owners) throw new CairnError('E_IO', 'device nodes are restored only as root; skipped');
        await this.#replace(fsDest);
        await execFileAsync('mknod', ['-m', (node.mode & 0o7777).toString(8), '--', dest, node.type === 'blockdev' ? 'b' : 'c', String(major(node.rdev ?? 0)), String(minor(node.rdev ?? 0))]);
        break;
      default:
        return; // sockets belong to the process that made them; like tar and restic, skip them
    }
    if (sel === 'all' || node.type === 'dir') await this.#meta(node, fsDest);
  }

  async #replace(p: Buffer): Promise<void> {
    if (this.#opts.overwrite) await rm(p, { force: true, recursive: false }).catch(() => undefined);
  }

  async #file(node: TreeNode, dest: BytePath): Promise<void> {
    const fsDest = toFsPath(dest);
    const linkKey = node.nlink > 1 ? `${node.devId}:${node.inode}` : undefined;
    if (linkKey !== undefined) {
      const first = this.#links.get(linkKey);
      if (first) {
        const firstDest = await first;
        if (firstDest !== undefined) {
          await this.#replace(fsDest);
          await link(toFsPath(firstDest), fsDest);
          this.result.files++;
          this.#progress.add(1, 0);
          return;
        }
      }
    }
    let done!: (p: BytePath | undefined) => void;
    if (linkKey !== undefined && !this.#links.has(linkKey)) this.#links.set(linkKey, new Promise((res) => (done = res)));
    try {
      await this.#writeContent(node, fsDest);
      done?.(dest);
    } catch (err) {
      done?.(undefined);
      throw err;
    }
  }

  async #writeContent(node: TreeNode, fsDest: Buffer): Promise<void> {
    const { signal } = this.#opts;
    const fh = await open(fsDest, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    try {
      const content = node.content ?? [];
      let pos = 0;
      const blobs = mapBoundedIter(content, PREFETCH, async (ref) => (typeof ref === 'number' ? ref : this.#repo.reader.load(BlobType.data, ref, { signal })));
      for await (const b of blobs) {
        if (typeof b === 'number') {
          pos += b;
          continue;
        }
        let off = 0;
        while (off < b.length) off += (await fh.write(b, off, b.length - off, pos + off)).bytesWritten;
        pos += b.length;
        this.result.bytes += b.length;
        this.#progress.add(0, b.length);
      }
      if (pos !== node.size) throw new CairnError('E_INTEGRITY', `content adds up to ${pos} bytes, the snapshot says ${node.size}`);
      await fh.truncate(pos);
    } finally {
      await fh.close();
    }
    this.result.files++;
    this.#progress.add(1, 0);
  }

  async #meta(node: TreeNode, p: Buffer): Promise<void> {
    if (this.#owners) await lchown(p, node.uid, node.gid).catch((err: unknown) => this.#fail(displayPath(p.toString('latin1')), err));
    if (node.type !== 'symlink') await chmod(p, node.mode & 0o7777);
    const mtime = nsToDate(node.mtimeNs);
    await lutimes(p, mtime, mtime);
  }

  #fail(p: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.result.errors.push({ path: displayPath(p), message });
    this.#progress.error(displayPath(p), err);
  }
}

/** utimes takes seconds as a number: keep microsecond precision (a double holds ns since 1970
 *  only to ~0.2 µs, so the last digits are lost as in every Node restore). */
function nsToDate(ns: string): number {
  const n = BigInt(ns);
  return Number(n / 1000n) / 1e6;
}

function major(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | ((rdev >>> 32) & ~0xfff);
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}

