import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { CairnError } from '../core/errors.js';
import type { BlobId } from '../core/ids.js';
import type { Snapshot } from '../core/snapshot-format.js';
import { type TreeNode, nameBytes, nodeByteName } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { Repository } from '../repo/repository.js';
import { type BytePath, NO_PROGRESS, type ProgressSink, displayPath, fromUserPath, toFsPath } from './progress.js';
import { ContentRestorer, type Owner, own } from './restore-content.js';
import { TreeLoader } from './tree-loader.js';

/** Where and what to restore. */
export interface RestoreOptions extends Op {
  readonly target: string;
  /** Absolute paths inside the snapshot to restore (with everything under them); all if empty. */
  readonly includes?: readonly string[];
  /** Restore into a target that is not empty, replacing files of the same name. */
  readonly overwrite?: boolean;
  /** Restore owners (uid/gid); only root can, so the CLI asks for it when it runs as root. */
  readonly owners?: boolean;
  readonly progress?: ProgressSink;
}

/** What a restore did. */
export interface RestoreResult {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly errors: { path: string; message: string }[];
}

/** Restores a snapshot (or the sub-paths in `includes`) under `target`, recreating each backed-up
 *  absolute path P as target/P: contents (holes left sparse), modes, owners (as root), mtimes,
 *  symlinks, hard links, empty directories, FIFOs and (as root) device nodes. Every blob is
 *  authenticated and checked against its id as it is read. Entries that fail are reported and
 *  skipped; the rest is restored. */
export async function restore(repo: Repository, snapshot: Snapshot, opts: RestoreOptions): Promise<RestoreResult> {
  const target = path.resolve(opts.target);
  await checkTarget(target, opts.overwrite === true);
  const includes = (opts.includes ?? []).map((p) => fromUserPath(path.resolve('/', p)).replace(/\/+$/, '') || '/');
  const progress = opts.progress ?? NO_PROGRESS;
  const s = snapshot.summary;
  progress.setTotal(s.filesNew + s.filesChanged + s.filesUnmodified, s.bytesTotal);
  await mkdir(target, { recursive: true });
  const r = new Restorer(repo, opts, progress, includes, toFsPath(fromUserPath(target)));
  try {
    try {
      await r.walk(snapshot.tree, '', fromUserPath(target));
    } finally {
      repo.reader.dropTreeCache();
    }
    await r.content.run(opts);
  } finally {
    // also when the walk failed: files already handed to the writers are finished, and the
    // writers' threads stop (a long-lived agent must not keep them)
    await r.content.close();
  }
  r.finish();
  if (includes.length > 0 && r.selected === 0) {
    throw new CairnError('E_PATH_NOT_FOUND', `none of ${includes.map(displayPath).join(', ')} is in the snapshot`, { hint: 'list its paths with cairn ls' });
  }
  return { files: r.content.files + r.linked, dirs: r.dirs.length, bytes: r.content.bytes, errors: r.errors };
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


/** Walks the snapshot's trees: creates directories and special files at once, plans file
 *  contents, and afterwards links hard links and sets directory metadata deepest first (after
 *  everything inside them is written, so their mtimes stay). */
class Restorer {
  readonly errors: { path: string; message: string }[] = [];
  readonly dirs: { node: TreeNode; dest: Buffer }[] = [];
  readonly content: ContentRestorer;
  selected = 0;
  linked = 0;
  readonly #opts: RestoreOptions;
  readonly #includes: readonly BytePath[];
  readonly #trees: TreeLoader;
  readonly #owners: boolean;
  readonly #firstOfInode = new Map<string, Buffer>();
  readonly #links: { from: Buffer; to: Buffer; shown: string }[] = [];

  constructor(repo: Repository, opts: RestoreOptions, progress: ProgressSink, includes: readonly BytePath[], target: Buffer) {
    this.#opts = opts;
    this.#includes = includes;
    this.#trees = new TreeLoader(repo.reader);
    this.#owners = opts.owners ?? false;
    this.content = new ContentRestorer(repo, progress, { owners: this.#owners }, target, (p, err) => this.#fail(p, err));
  }

  #select(snapPath: BytePath): Selection {
    if (this.#includes.length === 0) return 'all';
    if (this.#includes.some((inc) => inc === '/' || snapPath === inc || snapPath.startsWith(inc + '/'))) return 'all';
    if (this.#includes.some((inc) => inc.startsWith(snapPath + '/'))) return 'ancestor';
    return 'none';
  }

  /** Restores the children of tree `id`, found at snapshot path `snapPath`, into `dest`.
   *  `created`: the owner a file made in `dest` gets, when known (see #made). */
  async walk(id: BlobId, snapPath: BytePath, dest: BytePath, created?: Owner): Promise<void> {
    const tree = await this.#trees.load(id, this.#opts);
    // one entry after another, subdirectories last: nothing here waits on a file system call
    // (files are planned, and written later by the file-write workers; folders, links and
    // special files are made with synchronous calls), so entries in flight at once gained
    // nothing once folders were made synchronously (docs/decisions.md §31)
    const dirs = tree.nodes.filter((n) => n.type === 'dir');
    const others = tree.nodes.filter((n) => n.type !== 'dir');
    // a promise only for what waits (a folder's walk, a file queued while the writers are
    // full): most entries are done at once, and three async calls per file were ~150k x 3
    // promises on the walk's critical path (docs/decisions.md §41)
    const visit = (node: TreeNode): Promise<void> | undefined => {
      const name = nodeByteName(node);
      const childSnap = `${snapPath}/${name}`;
      if (name.includes('/') || name === '..' || name === '.' || name === '') {
        this.#fail(displayPath(childSnap), new CairnError('E_INTEGRITY', 'tree entry has an unsafe name; skipped'));
        return undefined;
      }
      const sel = this.#select(childSnap);
      if (sel === 'none' || (sel === 'ancestor' && node.type !== 'dir')) return undefined;
      if (sel === 'all') this.selected++;
      try {
        return this.#node(node, childSnap, `${dest}/${name}`, created)?.catch((err: unknown) => this.#entryFailed(childSnap, err));
      } catch (err) {
        this.#entryFailed(childSnap, err);
        return undefined;
      }
    };
    for (const n of others) {
      const pending = visit(n);
      if (pending) await pending;
    }
    for (const d of dirs) {
      const pending = visit(d);
      if (pending) await pending;
    }
  }

  /** An entry that could not be restored is reported and skipped; an abort stops the walk. */
  #entryFailed(snapPath: BytePath, err: unknown): void {
    if (this.#opts.signal?.aborted) throw err;
    this.#fail(displayPath(snapPath), err);
  }

  /** Restores one entry; a promise when it has to wait. `created`: the owner a file made beside
   *  `dest` gets, when known. */
  #node(node: TreeNode, snapPath: BytePath, dest: BytePath, created: Owner | undefined): Promise<void> | undefined {
    const fsDest = toFsPath(dest);
    switch (node.type) {
      case 'dir': {
        const inside = this.#makeDir(fsDest) ? this.#made(fsDest, created) : undefined;
        this.dirs.push({ node, dest: own(fsDest) });
        return node.subtree ? this.walk(node.subtree, snapPath, dest, inside) : undefined;
      }
      case 'file': {
        const key = node.nlink > 1 ? `${node.devId}:${node.inode}` : undefined;
        // the first of an inode's names gets its content; the others are linked to it at the end
        const first = key !== undefined ? this.#firstOfInode.get(key) : undefined;
        if (key !== undefined && !first) this.#firstOfInode.set(key, own(fsDest));
        this.#replace(fsDest);
        if (first) {
          this.#links.push({ from: first, to: own(fsDest), shown: displayPath(snapPath) });
          return undefined;
        }
        // created with O_EXCL when its content is written: after #replace nothing is there, so
        // no link can lead the write elsewhere
        return this.content.add(fsDest, node, created);
      }
      case 'symlink':
        this.#replace(fsDest);
        symlinkSync(toFsPath(nameBytes(node.linkTarget ?? '', node.linkTargetRaw)), fsDest);
        break;
      case 'fifo':
        this.#replace(fsDest);
        makeNode(fsDest, ['mkfifo', '-m', (node.mode & 0o7777).toString(8), '--']);
        break;
      case 'blockdev':
      case 'chardev':
        if (!this.#owners) throw new CairnError('E_IO', 'device nodes are restored only as root; skipped');
        this.#replace(fsDest);
        makeNode(fsDest, ['mknod', '-m', (node.mode & 0o7777).toString(8), '--'], [node.type === 'blockdev' ? 'b' : 'c', String(major(node.rdev ?? 0)), String(minor(node.rdev ?? 0))]);
        break;
      default:
        return undefined; // sockets belong to the process that made them; like tar and restic, skip them
    }
    this.#meta(node, fsDest);
    return undefined;
  }

  /** Links hard links to their now complete first file and sets directory metadata. */
  finish(): void {
    for (const l of this.#links) {
      try {
        linkSync(l.from, l.to);
        this.linked++;
      } catch (err) {
        this.#fail(l.shown, err);
      }
    }
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const d = this.dirs[i]!;
      try {
        this.#meta(d.node, d.dest);
      } catch (err) {
        this.#fail(displayPath(d.dest.toString('latin1')), err);
      }
    }
  }

  /** With --overwrite, removes whatever is at `p` (of any type) so the entry can be created new. */
  #replace(p: Buffer): void {
    if (this.#opts.overwrite) rmSync(p, { recursive: true, force: true });
  }

  /** Creates a directory, or keeps one that is there; anything else in its place (a file, or a
   *  symlink that would lead the restore outside the target) is removed with --overwrite and is
   *  an error without it. True when it made the directory. Synchronous: the walk is on this
   *  thread's critical path until the plan is complete, and an awaited mkdir per folder left it
   *  idle ~30% of that time. */
  #makeDir(p: Buffer): boolean {
    try {
      mkdirSync(p, 0o700);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lstatSync(p).isDirectory()) return false;
    if (!this.#opts.overwrite) throw new CairnError('E_TARGET_NOT_EMPTY', 'a non-directory is in the way of this directory', { hint: 'pass --overwrite to replace it' });
    rmSync(p, { recursive: true, force: true });
    mkdirSync(p, 0o700);
    return true;
  }

  /**
   * The owner a file made in directory `p`, which this restore just made, gets: the owner `p`
   * itself got, as a new directory in a folder this restore made (`parent`, known) gets the
   * owner that folder has. A new file or directory is owned by the process's fs uid, and by
   * the group of its folder when that folder is set-group-ID (which a new directory inherits)
   * or the file system is mounted with grpid, else by the process's fs gid; in a folder this
   * restore made, that is the folder's own group either way. Its metadata (and so its set-gid
   * bit) is set only once every file is written. So one lstat per directory made in one that
   * was there already (the target, or folders kept with --overwrite), where the rule is not
   * known to hold (a set-gid folder, a mount that squashes root), and none for the rest.
   */
  #made(p: Buffer, parent: Owner | undefined): Owner | undefined {
    if (!this.#owners) return undefined;
    if (parent) return parent;
    const st = lstatSync(p);
    return { uid: st.uid, gid: st.gid };
  }

  #meta(node: TreeNode, p: Buffer): void {
    if (this.#owners) lchownSync(p, node.uid, node.gid);
    if (node.type !== 'symlink') chmodSync(p, node.mode & 0o7777);
    const mtime = Number(BigInt(node.mtimeNs) / 1000n) / 1e6;
    lutimesSync(p, mtime, mtime);
  }

  #fail(p: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.errors.push({ path: p, message });
    this.#opts.progress?.error(p, err);
  }
}

/** Runs mkfifo or mknod (Node has no API for either) on an ASCII temporary name beside `dest`,
 *  then renames it into place with the exact bytes of the name: command arguments are passed as
 *  UTF-8, so a name that is not UTF-8 cannot be given to the command itself. */
function makeNode(dest: Buffer, command: string[], after: string[] = []): void {
  const slash = dest.lastIndexOf(0x2f);
  const tmp = Buffer.concat([dest.subarray(0, slash + 1), Buffer.from(`.cairn-node-${randomBytes(6).toString('hex')}`)]);
  execFileSync(command[0]!, [...command.slice(1), tmp.toString('latin1'), ...after]);
  renameSync(tmp, dest);
}

function major(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}
