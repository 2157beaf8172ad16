import type { BigIntStats, Dirent } from 'node:fs';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { forEachBounded, Semaphore } from '../core/bounded.js';
import { CairnError } from '../core/errors.js';
import type { BlobId, SnapshotId } from '../core/ids.js';
import { BlobType } from '../core/pack-format.js';
import type { BackupSummary, Snapshot } from '../core/snapshot-format.js';
import { type Tree, type TreeNode, encodeName, encodeTree } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { BlobWriter } from '../repo/blob-writer.js';
import type { Repository } from '../repo/repository.js';
import { matchesFilter } from '../repo/snapshots.js';
import { type Excluder, compileExcludes } from './excludes.js';
import { ByteBudget, FileSaver, type SavedContent } from './file-saver.js';
import { IdNames, type NewNode, nodeFromStat, sameMetadata, unchanged } from './fs-meta.js';
import { type BytePath, NO_PROGRESS, type ProgressSink, displayPath, fromUserPath, toFsPath } from './progress.js';
import { sameDirEntries, tallySubtree } from './subtree-reuse.js';
import { TreeLoader } from './tree-loader.js';

/** What to back up and how. */
export interface BackupOptions extends Op {
  /** Paths to back up; made absolute. */
  readonly paths: readonly string[];
  readonly excludes?: readonly string[];
  readonly oneFileSystem?: boolean;
  readonly tags?: readonly string[];
  readonly source?: { readonly name: string; readonly kind: 'folder' | 'disk' };
  readonly agent?: string;
  /** The parent snapshot: an id, 'none' for a full read, or undefined to pick the latest with
   *  the same host, source and paths. */
  readonly parent?: SnapshotId | 'none';
  readonly progress?: ProgressSink;
  readonly program: string;
  /** Directory entries handled at once per directory. */
  readonly concurrency?: number;
  /** Bytes of chunks in flight between reading and sealing. */
  readonly bufferBytes?: number;
  /** Narrows the walk to what may have changed since snapshot `base`: a directory for which
   *  mayHaveChanged(path) is false is not read; its subtree is taken from the parent snapshot.
   *  Applied only when the parent is `base` (what the journal counted from), it excluded the same
   *  paths, and it had no unreadable entries; otherwise the walk is full. */
  readonly changes?: { readonly base: SnapshotId; mayHaveChanged(dir: string): boolean };
}

/** A backup's outcome: the snapshot, and the paths that could not be read. */
export interface BackupResult {
  readonly snapshotId: SnapshotId;
  readonly snapshot: Snapshot;
  readonly parent?: SnapshotId;
  readonly errors: readonly { path: string; message: string }[];
  /** Whether opts.changes narrowed the walk (see BackupOptions.changes). */
  readonly narrowed: boolean;
}

/* Metadata calls (lstat, readdir) are made synchronously: on a warm cache each takes a few µs,
 * while a promise round trip through the libuv pool costs 5-10x that in main-thread overhead, and
 * a no-change run is nothing but metadata calls (measured in native-bench/RESULTS.md). File
 * content is read asynchronously, so large reads overlap with hashing and compression. */

/** Entries of one directory handled at once: enough to keep the libuv pool's 4 threads fed
 *  with lstat/open/read calls; measured in native-bench. */
const DEFAULT_CONCURRENCY = 16;
/** Bytes of chunks between reading and sealing: one max-size chunk or ~400 small files. Enough
 *  since the main thread seals what the workers have not started when the budget is full
 *  (decisions §33): 16 MiB was no faster on 150k files / 2.9 GB and held ~10 MiB more (32 MiB,
 *  before that, no faster either; §26). */
const DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024;
/** Parent trees loaded ahead of the walk of a directory's subdirectories. */
const PREFETCH_TREES = 8;
/** Files at or above the min chunk size hold a 12 MiB read buffer each: allow two at once. */
const LARGE_FILE_SLOTS = 2;
/** Smaller files being read and hashed at once, across all directories: the walk may have many
 *  directories open, and without this bound every file found waits holding its bytes. */
const SMALL_FILE_SLOTS = 32;

interface Counters {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirs: number;
  bytesRead: number;
  bytesTotal: number;
}

/** A node of the set of paths to back up: `target` ones are backed up whole, the others are
 *  ancestors whose own metadata is recorded but only the named children are visited. */
interface PathTrie {
  target: boolean;
  readonly children: Map<string, PathTrie>;
}

/** Backs up `opts.paths` into a new snapshot. Unreadable entries are reported and skipped; a
 *  failure to write the repository aborts. Blobs are flushed (packs, then index) before the
 *  snapshot is written, so the snapshot never refers to blobs that are not durable. */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const started = repo.env.now();
  const progress = opts.progress ?? NO_PROGRESS;
  const absPaths = normalizePaths(opts.paths);
  for (const p of absPaths) {
    await lstat(toFsPath(fromUserPath(p))).catch((err: unknown) => {
      throw new CairnError('E_PATH_NOT_FOUND', `cannot back up ${p}: ${(err as Error).message}`, { cause: err, hint: 'check the path exists and is readable' });
    });
  }
  const source = opts.source ?? { name: absPaths.join(','), kind: 'folder' as const };
  const parentId = await pickParent(repo, opts, absPaths, source.name);
  const parent = parentId ? await repo.loadSnapshot(parentId, opts) : undefined;
  // the parent's totals are the best cheap estimate of this run's (most runs change little)
  if (parent) progress.setTotal(parent.summary.filesNew + parent.summary.filesChanged + parent.summary.filesUnmodified, parent.summary.bytesTotal);
  await repo.adoptOrphanPacks(opts);
  const writer = repo.newWriter();
  // a failure anywhere stops the work still in flight (reads, compressions, uploads) and waits
  // for it, so nothing writes to the repository after backup() has rejected
  const failed = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
  const changes = narrowing(opts, parentId, parent);
  const walker = new Walker(repo, writer, { ...opts, signal, changes }, progress, await IdNames.load());
  let rootTree: BlobId;
  try {
    rootTree = await walker.saveTrie(buildTrie(absPaths), '/', parent?.tree, signal);
    await walker.drain();
    await writer.flush({ signal });
    await writer.close();
  } catch (err) {
    failed.abort(err);
    await walker.drain().catch(() => undefined);
    await writer.settle();
    throw err;
  } finally {
    repo.reader.dropTreeCache();
  }
  const c = walker.counters;
  const summary: BackupSummary = {
    ...c,
    errors: walker.errors.length,
    bytesAdded: writer.stats.bytesAdded,
    blobsAdded: writer.stats.blobsAdded,
    durationMs: repo.env.now().getTime() - started.getTime(),
  };
  const snapshot: Snapshot = {
    version: 1,
    time: started.toISOString(),
    host: repo.env.host,
    username: repo.env.username,
    ...(opts.agent !== undefined ? { agent: opts.agent } : {}),
    source,
    paths: absPaths,
    excludes: [...(opts.excludes ?? [])],
    tags: [...(opts.tags ?? [])],
    ...(parentId ? { parent: parentId } : {}),
    tree: rootTree,
    summary,
    program: opts.program,
  };
  const snapshotId = await repo.saveSnapshot(snapshot, opts);
  return { snapshotId, snapshot, ...(parentId ? { parent: parentId } : {}), errors: walker.errors, narrowed: changes !== undefined };
}

function normalizePaths(paths: readonly string[]): string[] {
  if (paths.length === 0) throw new CairnError('E_USAGE', 'no path to back up: give at least one');
  const abs = [...new Set(paths.map((p) => path.resolve(p)))].sort();
  // a path inside another one given is already covered by it
  return abs.filter((p) => !abs.some((q) => q !== p && (q === '/' || p.startsWith(q + '/'))));
}

async function pickParent(repo: Repository, opts: BackupOptions, paths: string[], source: string): Promise<SnapshotId | undefined> {
  if (opts.parent === 'none') return undefined;
  if (opts.parent !== undefined) return opts.parent;
  const all = await repo.listSnapshots(opts);
  const matching = all.filter((e) => matchesFilter(e.snapshot, { host: repo.env.host, paths, source }));
  return matching[matching.length - 1]?.id;
}

/** opts.changes, when they can be trusted against the parent: it is the snapshot the journal
 *  counted from (else changes between the two were never journaled for it), it excluded the
 *  same paths (else a reused subtree could hold entries this run excludes, or miss ones it no
 *  longer excludes), and it read everything (an entry left out as unreadable would otherwise
 *  stay left out of every narrowed snapshot). */
function narrowing(opts: BackupOptions, parentId: SnapshotId | undefined, parent: Snapshot | undefined): BackupOptions['changes'] {
  if (!opts.changes || !parent || parentId !== opts.changes.base || parent.summary.errors > 0) return undefined;
  const excludes = opts.excludes ?? [];
  const same = parent.excludes.length === excludes.length && parent.excludes.every((e, i) => e === excludes[i]);
  return same ? opts.changes : undefined;
}

function buildTrie(paths: readonly string[]): PathTrie {
  const root: PathTrie = { target: false, children: new Map() };
  for (const p of paths) {
    let node = root;
    for (const part of fromUserPath(p).split('/').filter(Boolean)) {
      let next = node.children.get(part);
      if (!next) {
        next = { target: false, children: new Map() };
        node.children.set(part, next);
      }
      node = next;
    }
    node.target = true;
  }
  return root;
}

/** A directory being walked (see Walker.#dirEntry). */
interface DirWalk {
  readonly p: BytePath;
  readonly dev: string;
  /** The parent snapshot's nodes of this directory, by name. */
  readonly prev: ReadonlyMap<string, TreeNode>;
  readonly nodes: TreeNode[];
  /** How many of `nodes` are the parent's own. */
  reused: number;
  readonly subdirs: { name: string; st: BigIntStats }[];
  readonly signal: AbortSignal | undefined;
}

/** Puts an entry's node (if any) in its directory's tree. */
function keep(d: DirWalk, node: TreeNode | undefined, name: string): void {
  if (!node) return;
  d.nodes.push(node);
  if (node === d.prev.get(name)) d.reused++;
}

/** Walks the file system, saving file contents and one tree blob per directory. */
class Walker {
  readonly counters: Counters = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, bytesRead: 0, bytesTotal: 0 };
  readonly errors: { path: string; message: string }[] = [];
  readonly #repo: Repository;
  readonly #writer: BlobWriter;
  readonly #opts: BackupOptions;
  readonly #progress: ProgressSink;
  readonly #names: IdNames;
  readonly #saver: FileSaver;
  readonly #large = new Semaphore(LARGE_FILE_SLOTS);
  readonly #small = new Semaphore(SMALL_FILE_SLOTS);
  readonly #excluder: Excluder;
  readonly #trees: TreeLoader;
  readonly #concurrency: number;
  #rootDevs = new Set<string>();

  constructor(repo: Repository, writer: BlobWriter, opts: BackupOptions, progress: ProgressSink, names: IdNames) {
    this.#repo = repo;
    this.#writer = writer;
    this.#opts = opts;
    this.#progress = progress;
    this.#names = names;
    this.#saver = new FileSaver(writer, repo.hasher, repo.gear, repo.config.chunker, new ByteBudget(opts.bufferBytes ?? DEFAULT_BUFFER_BYTES, () => writer.assist()));
    this.#excluder = compileExcludes(opts.excludes ?? []);
    this.#trees = new TreeLoader(repo.reader);
    this.#concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** Saves the tree of a trie node at byte path `dir` and returns its id. */
  async saveTrie(trie: PathTrie, dir: BytePath, parentTree: BlobId | undefined, signal?: AbortSignal): Promise<BlobId> {
    const prev = await this.#trees.byName(parentTree, signal);
    const nodes: TreeNode[] = [];
    for (const [name, child] of trie.children) {
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      // a path that vanished since the backup started is reported and skipped, like any entry
      const st = this.#lstat(p);
      if (!st) continue;
      if (child.target) {
        if (st.isDirectory()) this.#rootDevs.add(st.dev.toString());
        const node = await this.#entry(p, name, prev.get(name), signal, st);
        if (node) nodes.push(node);
        continue;
      }
      const subtree = await this.saveTrie(child, p, prev.get(name)?.subtree, signal);
      const node = nodeFromStat(name, st, this.#names);
      node.subtree = subtree;
      nodes.push(node);
      this.counters.dirs++;
    }
    return this.#saveTree({ nodes }, signal);
  }

  async #saveTree(tree: Tree, signal?: AbortSignal): Promise<BlobId> {
    const bytes = encodeTree(tree);
    const id = this.#repo.hasher.raw(bytes);
    await this.#writer.save(BlobType.tree, id, bytes, { signal });
    return id.toString('hex') as BlobId;
  }

  async #dir(p: BytePath, parentTree: BlobId | undefined, dev: string, signal?: AbortSignal): Promise<BlobId> {
    let entries: Dirent[];
    try {
      entries = readdirSync(toFsPath(p), { encoding: 'latin1', withFileTypes: true });
    } catch (err) {
      this.#fail(p, err);
      entries = [];
    }
    const prev = await this.#trees.byName(parentTree, signal);
    const d: DirWalk = { p, dev, prev, nodes: [], reused: 0, subdirs: [], signal };
    // Entries other than directories are handled concurrently; subdirectories one after another,
    // depth first, so the directories open at once (each holding its entries) are bounded by
    // the depth of the tree, not its width.
    await forEachBounded(entries, this.#concurrency, this.#walkEntry, d);
    const { nodes, subdirs } = d;
    const prevTrees = subdirs.map(({ name }) => {
      const prevNode = prev.get(name);
      return prevNode?.type === 'dir' ? prevNode.subtree : undefined;
    });
    for (const [i, { name, st }] of subdirs.entries()) {
      // keep a few parent trees loading ahead of the walk, not all of a wide directory's
      this.#trees.prefetch(prevTrees.slice(i, i + PREFETCH_TREES), signal);
      const child = p === '/' ? `/${name}` : `${p}/${name}`;
      keep(d, await this.#entry(child, name, prev.get(name), signal, st, dev), name);
    }
    this.#trees.forget(prevTrees);
    // every entry is its parent node unchanged, and none is gone: the tree is the parent's
    if (parentTree !== undefined && d.reused === nodes.length && d.reused === prev.size && this.#writer.known(Buffer.from(parentTree, 'hex'))) return parentTree;
    return this.#saveTree({ nodes }, signal);
  }

  readonly #walkEntry = (entry: Dirent, _i: number, d: DirWalk): Promise<void> | undefined => this.#dirEntry(d, entry);

  /** One entry of the directory `d` walks, other than a subdirectory (which it puts in
   *  d.subdirs for later): its node goes into d.nodes, at once where nothing needs a promise.
   *  A method (called through #walkEntry, made once), not a closure made per directory: each
   *  directory's got hot and was compiled again, with what it inlined (13 times in a first
   *  backup, ~10 ms each). */
  #dirEntry(d: DirWalk, entry: Dirent): Promise<void> | undefined {
    const name = entry.name;
    const child = d.p === '/' ? `/${name}` : `${d.p}/${name}`;
    if (entry.isFile() && !d.prev.has(name)) {
      const now = this.#newFile(child, name, d.dev, d.signal);
      if (now instanceof Promise) return now.then((node) => keep(d, node, name));
      if (now !== undefined) {
        keep(d, now ?? undefined, name);
        return;
      }
    }
    const st = this.#lstat(child);
    if (!st) return;
    if (st.isDirectory()) {
      d.subdirs.push({ name, st });
      return;
    }
    // most entries are done at once (a small file, an unchanged one); the rest take a promise
    const prev = d.prev.get(name);
    const now = this.#entryNow(child, name, prev, st, d.signal);
    if (now !== undefined) {
      keep(d, now ?? undefined, name);
      return;
    }
    return this.#entry(child, name, prev, d.signal, st, d.dev).then((node) => keep(d, node, name));
  }

  /** lstat of `p`, or undefined when it vanished (silently) or cannot be read (reported). */
  #lstat(p: BytePath): BigIntStats | undefined {
    try {
      return lstatSync(toFsPath(p), { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#fail(p, err);
      return undefined;
    }
  }

  /** #entry without a promise where nothing needs one: a regular file that is excluded,
   *  unmodified, or small enough to be read, hashed and handed over at once (see
   *  FileSaver.saveSmallNow). Returns null when the entry is left out (excluded, vanished or
   *  unreadable), undefined when this cannot decide now: the caller then awaits #entry. */
  #entryNow(p: BytePath, name: string, prev: TreeNode | undefined, st: BigIntStats, signal?: AbortSignal): TreeNode | null | undefined {
    if (!st.isFile()) return undefined;
    signal?.throwIfAborted();
    if (this.#excluder(displayPath(p), false)) return null;
    if (prev?.type === 'file' && this.#unmodified(prev, st)) return prev;
    // same content, other metadata: #file reuses the content
    if (unchanged(prev, st)) return undefined;
    let saved: SavedContent | undefined;
    try {
      saved = this.#saver.saveSmallNow(p, Number(st.size), { signal });
    } catch (err) {
      this.#entryFailed(p, err, signal);
      return null;
    }
    return saved && this.#saved(nodeFromStat(name, st, this.#names), prev, saved);
  }

  /**
   * A regular file (as readdir says) the parent snapshot does not have: opened first and
   * fstat'ed, where lstat and then open walked its path twice (on a first backup of 150k files,
   * ~1.3 µs of the main thread's ~6 µs of system calls per file; docs/decisions.md §35). A
   * small file is read on the spot, as #entryNow does; a larger one goes on with #entry and the
   * stats it was opened with. Returns the node, or null when the file is left out, or a promise
   * of what #entry gives; undefined when the entry must take the general way (lstat first): it
   * cannot be opened (#entry then reports why, as for any file) or is no longer a regular file.
   */
  #newFile(p: BytePath, name: string, dev: string, signal?: AbortSignal): TreeNode | null | Promise<TreeNode | undefined> | undefined {
    signal?.throwIfAborted();
    if (this.#excluder(displayPath(p), false)) return null;
    let fd: number;
    try {
      // O_NONBLOCK: should it have become a FIFO since readdir, opening it does not block
      fd = openSync(toFsPath(p), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    let st: BigIntStats;
    let saved: SavedContent | undefined;
    try {
      st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) return undefined;
      saved = this.#saver.saveSmallNowFd(fd, Number(st.size), { signal });
    } catch (err) {
      this.#entryFailed(p, err, signal);
      return null;
    } finally {
      closeSync(fd);
    }
    if (saved) return this.#saved(nodeFromStat(name, st, this.#names), undefined, saved);
    return this.#entry(p, name, undefined, signal, st, dev);
  }

  /** Records why an entry is left out, or throws when the backup must stop (abort, a repository
   *  error). A file that vanished is left out silently. */
  #entryFailed(p: BytePath, err: unknown, signal: AbortSignal | undefined): void {
    if (signal?.aborted || err instanceof CairnError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#fail(p, err);
  }

  /** One directory entry as a tree node, or undefined when it is excluded, vanished or unreadable. */
  async #entry(p: BytePath, name: string, prev: TreeNode | undefined, signal: AbortSignal | undefined, known?: BigIntStats, parentDev?: string): Promise<TreeNode | undefined> {
    signal?.throwIfAborted();
    const st = known ?? this.#lstat(p);
    if (!st) return undefined;
    if (this.#excluder(displayPath(p), st.isDirectory())) return undefined;
    if (prev?.type === 'file' && st.isFile() && this.#unmodified(prev, st)) return prev;
    const node = nodeFromStat(name, st, this.#names);
    try {
      switch (node.type) {
        case 'dir': {
          this.counters.dirs++;
          const dev = st.dev.toString();
          const crosses = this.#opts.oneFileSystem === true && parentDev !== undefined && dev !== parentDev && !this.#rootDevs.has(dev);
          const subtree = crosses
            ? await this.#saveTree({ nodes: [] }, signal)
            : ((await this.#reuse(p, prev, st, signal)) ?? (await this.#dir(p, prev?.type === 'dir' ? prev.subtree : undefined, dev, signal)));
          if (prev?.type === 'dir' && prev.subtree === subtree && sameMetadata(prev, st, this.#names)) return prev;
          node.subtree = subtree;
          return node;
        }
        case 'file':
          return await this.#file(p, node, st, prev, signal);
        case 'symlink': {
          const target = await readlink(toFsPath(p), { encoding: 'buffer' });
          const t = encodeName(target.toString('latin1'));
          node.linkTarget = t.name;
          if (t.nameRaw !== undefined) node.linkTargetRaw = t.nameRaw;
          return node;
        }
        default:
          return node;
      }
    } catch (err) {
      this.#entryFailed(p, err, signal);
      return undefined;
    }
  }

  /** The parent snapshot's subtree of directory `p`, counted into the summary, when the change
   *  journal says nothing under `p` changed, its own entries did not (sameDirEntries), and every
   *  blob the subtree names is still stored; otherwise undefined, and `p` is walked. */
  async #reuse(p: BytePath, prev: TreeNode | undefined, st: BigIntStats, signal?: AbortSignal): Promise<BlobId | undefined> {
    const changes = this.#opts.changes;
    if (!changes || prev?.type !== 'dir' || prev.subtree === undefined || !sameDirEntries(prev, st)) return undefined;
    if (changes.mayHaveChanged(displayPath(p))) return undefined;
    const tally = await tallySubtree(this.#trees, (id) => this.#writer.known(Buffer.from(id, 'hex')), prev.subtree, signal);
    if (!tally) return undefined;
    this.counters.filesUnmodified += tally.files;
    this.counters.bytesTotal += tally.bytes;
    this.counters.dirs += tally.dirs;
    this.#progress.add(tally.files, tally.bytes);
    return prev.subtree;
  }

  /** A file whose parent node stands as it is: content unchanged and still stored, and every
   *  other field the same; counted as unmodified. */
  #unmodified(prev: TreeNode, st: BigIntStats): boolean {
    if (!unchanged(prev, st) || !sameMetadata(prev, st, this.#names) || !prev.content!.every((c) => typeof c === 'number' || this.#writer.known(Buffer.from(c, 'hex')))) return false;
    this.counters.filesUnmodified++;
    this.counters.bytesTotal += prev.size;
    this.#progress.add(1, prev.size);
    return true;
  }

  async #file(p: BytePath, node: NewNode, st: BigIntStats, prev: TreeNode | undefined, signal?: AbortSignal): Promise<TreeNode> {
    const size = Number(st.size);
    if (unchanged(prev, st) && prev!.content!.every((c) => typeof c === 'number' || this.#writer.known(Buffer.from(c, 'hex')))) {
      this.counters.filesUnmodified++;
      this.counters.bytesTotal += size;
      this.#progress.add(1, size);
      node.content = prev!.content!;
      return node;
    }
    const large = size >= this.#repo.config.chunker.minSizeBytes;
    const saved = await (large ? this.#large : this.#small).with(() => this.#saver.save(p, size, { signal }));
    return this.#saved(node, prev, saved);
  }

  /** The node of a file whose content was just saved (`node` itself, filled in), counted as new
   *  or changed. */
  #saved(node: NewNode, prev: TreeNode | undefined, saved: SavedContent): TreeNode {
    if (prev?.type === 'file') this.counters.filesChanged++;
    else this.counters.filesNew++;
    this.counters.bytesRead += saved.sizeBytes;
    this.counters.bytesTotal += saved.sizeBytes;
    this.#progress.add(1, saved.sizeBytes);
    node.size = saved.sizeBytes;
    node.content = saved.content;
    return node;
  }

  /** Waits until every chunk handed to the writer is sealed into a pack. */
  drain(): Promise<void> {
    return this.#saver.drain();
  }

  #fail(p: BytePath, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.errors.push({ path: displayPath(p), message });
    this.#progress.error(displayPath(p), err);
  }
}

