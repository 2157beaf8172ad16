import { closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { mapBounded } from '../core/bounded.js';
import { CairnError } from '../core/errors.js';
import { type BlobId, fromHex } from '../core/ids.js';
import type { TreeNode } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { BlobLocation } from '../repo/compact-index.js';
import type { Repository } from '../repo/repository.js';
import type { ProgressSink } from './progress.js';

/** One regular file being restored. */
interface FileTask {
  readonly dest: Buffer;
  readonly shown: string;
  readonly node: TreeNode;
  pending: number;
  fd: number | undefined;
  failed: boolean;
}

/** Where one stored blob goes: every file position that holds it. */
interface BlobTargets {
  readonly id: BlobId;
  readonly loc: BlobLocation;
  readonly targets: { task: FileTask; offset: number }[];
}

/** Pack reads in flight: each holds up to a pack (~16-24 MiB) in memory. */
const PACK_CONCURRENCY = 2;
/** Blobs of one pack opened (decrypt, decompress, verify) at once. */
const BLOB_CONCURRENCY = 4;
/** Needed blobs closer than this are read with one ranged read, skipping the gap. */
const MERGE_GAP_BYTES = 4 * 1024 * 1024;
/** Files kept open while partly written; more are closed and reopened as needed. */
const MAX_OPEN_FILES = 256;

/** How a file's metadata is applied once its content is complete. */
export interface MetaOptions {
  readonly owners: boolean;
}

/**
 * Restores file contents pack by pack, as restic's restorer does: every pack is read once (in
 * few ranged reads), each blob in it is opened and verified once, and written to every file and
 * offset that holds it. A file is finished (truncated to its size, so trailing holes stay sparse;
 * owner, mode and mtime set through its descriptor) when its last blob lands. File writes are
 * synchronous positional writes: into the page cache they take microseconds.
 */
export class ContentRestorer {
  readonly #repo: Repository;
  readonly #progress: ProgressSink;
  readonly #meta: MetaOptions;
  readonly #onError: (path: string, err: unknown) => void;
  readonly #blobs = new Map<string, BlobTargets>();
  readonly #open: FileTask[] = [];
  files = 0;
  bytes = 0;

  constructor(repo: Repository, progress: ProgressSink, meta: MetaOptions, onError: (path: string, err: unknown) => void) {
    this.#repo = repo;
    this.#progress = progress;
    this.#meta = meta;
    this.#onError = onError;
  }

  /** Plans the content of a file, which the caller has created empty; a file with nothing to
   *  read is finished at once. */
  add(dest: Buffer, shown: string, node: TreeNode): void {
    const task: FileTask = { dest, shown, node, pending: 0, fd: undefined, failed: false };
    let offset = 0;
    const planned: { b: BlobTargets; offset: number }[] = [];
    try {
      for (const ref of node.content ?? []) {
        if (typeof ref === 'number') {
          offset += ref;
          continue;
        }
        let b = this.#blobs.get(ref);
        if (!b) {
          b = { id: ref, loc: this.#repo.reader.locate(ref), targets: [] };
          this.#blobs.set(ref, b);
        }
        planned.push({ b, offset });
        offset += b.loc.rawLength;
      }
      if (offset !== node.size) throw new CairnError('E_INTEGRITY', `content adds up to ${offset} bytes, the snapshot says ${node.size}`);
    } catch (err) {
      this.#onError(shown, err);
      return;
    }
    for (const p of planned) p.b.targets.push({ task, offset: p.offset });
    task.pending = planned.length;
    if (task.pending === 0) this.#guard(task, () => this.#finish(task));
  }

  /** Reads every planned blob and writes it where it belongs. */
  async run(opts: Op): Promise<void> {
    const byPack = new Map<string, BlobTargets[]>();
    for (const b of this.#blobs.values()) {
      const list = byPack.get(b.loc.packId);
      if (list) list.push(b);
      else byPack.set(b.loc.packId, [b]);
    }
    await mapBounded(byPack.values(), PACK_CONCURRENCY, (blobs) => this.#pack(blobs, opts));
    for (const t of this.#open.splice(0)) this.#close(t);
  }

  async #pack(blobs: BlobTargets[], opts: Op): Promise<void> {
    blobs.sort((a, b) => a.loc.offset - b.loc.offset);
    for (const group of ranges(blobs)) {
      const first = group[0]!.loc;
      const last = group[group.length - 1]!.loc;
      let bytes: Uint8Array;
      try {
        bytes = await this.#repo.store.get({ kind: 'data', name: first.packId }, { offset: first.offset, length: last.offset + last.length - first.offset }, opts);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        for (const b of group) this.#failAll(b, err);
        continue;
      }
      await mapBounded(group, BLOB_CONCURRENCY, async (b) => {
        const at = b.loc.offset - first.offset;
        let data: Uint8Array;
        try {
          data = await this.#repo.reader.openBlob(fromHex(b.id), b.loc, bytes.subarray(at, at + b.loc.length));
        } catch (err) {
          this.#failAll(b, err);
          return;
        }
        for (const t of b.targets) this.#guard(t.task, () => this.#write(t.task, data, t.offset));
      });
    }
  }

  #write(task: FileTask, data: Uint8Array, offset: number): void {
    const fd = this.#fd(task);
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, offset + done);
    this.bytes += data.length;
    this.#progress.add(0, data.length);
    if (--task.pending === 0) this.#finish(task);
  }

  #fd(task: FileTask): number {
    if (task.fd !== undefined) return task.fd;
    if (this.#open.length >= MAX_OPEN_FILES) this.#close(this.#open.shift()!);
    task.fd = openSync(task.dest, constants.O_WRONLY | constants.O_NOFOLLOW);
    this.#open.push(task);
    return task.fd;
  }

  #close(task: FileTask): void {
    if (task.fd === undefined) return;
    const fd = task.fd;
    task.fd = undefined;
    const i = this.#open.indexOf(task);
    if (i >= 0) this.#open.splice(i, 1);
    closeSync(fd);
  }

  #finish(task: FileTask): void {
    const fd = this.#fd(task);
    const n = task.node;
    ftruncateSync(fd, n.size);
    if (this.#meta.owners) fchownSync(fd, n.uid, n.gid);
    fchmodSync(fd, n.mode & 0o7777);
    const mtime = Number(BigInt(n.mtimeNs) / 1000n) / 1e6;
    futimesSync(fd, mtime, mtime);
    this.#close(task);
    this.files++;
    this.#progress.add(1, 0);
  }

  #guard(task: FileTask, fn: () => void): void {
    if (task.failed) return;
    try {
      fn();
    } catch (err) {
      this.#fail(task, err);
    }
  }

  #failAll(b: BlobTargets, err: unknown): void {
    for (const t of b.targets) this.#fail(t.task, err);
  }

  #fail(task: FileTask, err: unknown): void {
    if (task.failed) return;
    task.failed = true;
    try {
      this.#close(task);
      unlinkSync(task.dest); // a partial file must not pass for a restored one
    } catch {
      // the error that matters is the one being reported
    }
    this.#onError(task.shown, err);
  }
}

/** Groups blobs sorted by offset into runs read with one ranged read each. */
function ranges(sorted: BlobTargets[]): BlobTargets[][] {
  const out: BlobTargets[][] = [];
  let cur: BlobTargets[] = [];
  let end = -1;
  for (const b of sorted) {
    if (cur.length > 0 && b.loc.offset - end > MERGE_GAP_BYTES) {
      out.push(cur);
      cur = [];
    }
    cur.push(b);
    end = b.loc.offset + b.loc.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
