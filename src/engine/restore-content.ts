import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { mapBounded } from '../core/bounded.js';
import { CairnError } from '../core/errors.js';
import { fromHex } from '../core/ids.js';
import type { TreeNode } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import { notIndexed } from '../repo/blob-reader.js';
import type { CompactIndex } from '../repo/compact-index.js';
import type { Repository } from '../repo/repository.js';
import { finishFile, writeAllAt } from './file-finish.js';
import { FileWritePool, type WholeFile } from './file-write-pool.js';
import type { ProgressSink } from './progress.js';

/** File flags in the plan. */
const CREATED = 1;
const FAILED = 2;

/** Grows a typed array to hold at least `n` items (doubling), keeping its contents. */
function grown<T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(a: T, n: number, make: (len: number) => T): T {
  if (n <= a.length) return a;
  const b = make(Math.max(n, 2 * a.length));
  b.set(a);
  return b;
}

/** Pack reads in flight: each holds up to a pack (~16-25 MiB) in memory, and they share one
 *  read buffer (so this must stay 1, or each needs its own). One is enough: restore
 *  is bound by creating files, and a second read in flight held ~27 MiB more in the same time
 *  (150k files: 20.0/23.5 s and 267-270 MiB with one, 20.5/23.9 s and 295-297 MiB with two). */
const PACK_CONCURRENCY = 1;
/** Blobs of one pack opened (decrypt, decompress, verify) at once. */
const BLOB_CONCURRENCY = 4;
/** Blobs below this raw size are decompressed into reused buffers of this size (one per blob
 *  opened at once: BLOB_CONCURRENCY x 2 MiB), not each into a buffer of its own: a restore's
 *  decompressed blobs were most of its garbage, which V8 frees only at its next GC. Larger blobs
 *  (few: chunks average 1 MiB) get their own. */
const DECODE_BUFFER_BYTES = 2 * 1024 * 1024;
/** Needed blobs closer than this are read with one ranged read, skipping the gap. */
const MERGE_GAP_BYTES = 4 * 1024 * 1024;
/** A ranged read spans at most this many bytes (or one blob, if larger): the read buffer is
 *  kept for the whole restore, and whole-pack reads had grown it to ~25 MiB. */
const READ_SPAN_BYTES = 4 * 1024 * 1024;
/** Files kept open while partly written; more are closed and reopened as needed. */
const MAX_OPEN_FILES = 256;
/** Worker threads that create and write whole files: creating a file is mostly kernel time
 *  (~65 µs here), which spreads over cores (docs/decisions.md §29). */
function fileWriteWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** How a file's metadata is applied once its content is complete. */
export interface MetaOptions {
  readonly owners: boolean;
}

/**
 * Restores file contents pack by pack, as restic's restorer does: every pack is read once (in
 * few ranged reads), each blob in it is opened and verified once, and written to every file and
 * offset that holds it. A file is finished (truncated to its size, so trailing holes stay sparse;
 * owner, mode and mtime set through its descriptor) when its last blob lands. A file of one
 * blob (most files) is created, written and finished whole on a file-write worker
 * (FileWritePool); the blobs of larger files are synchronous positional writes on this thread:
 * into the page cache they take microseconds.
 */
export class ContentRestorer {
  readonly #repo: Repository;
  /** The index the plan's rows point into (the repository's, as the restore started). */
  readonly #index: CompactIndex;
  readonly #progress: ProgressSink;
  readonly #meta: MetaOptions;
  readonly #onError: (path: string, err: unknown) => void;
  /** Bytes of the target path that prefix every destination: stripped for messages, which name
   *  the path as backed up. */
  readonly #targetBytes: number;
  // The plan is columns of numbers, not objects: a restore of 150k files held ~120 MiB of
  // plan objects (five per file), then ~30 MiB, most of it whole paths' bytes (decisions §27);
  // a path is now its folder (one copy per folder) and its name (decisions §30).
  // Files, by number: the destination folder and name, metadata and progress.
  /** Folders of destinations, each with its trailing slash; files of a folder come together. */
  readonly #dirs: Buffer[] = [];
  #dirOf = new Uint32Array(1024);
  /** Names, their bytes in one arena. */
  #names = new Uint8Array(64 * 1024);
  #nameStart = new Float64Array(1024);
  #size = new Float64Array(1024);
  #mtime = new Float64Array(1024);
  /** mode, uid, gid per file. */
  #modeUidGid = new Uint32Array(3 * 1024);
  /** Blob occurrences not yet written. */
  #pending = new Uint32Array(1024);
  /** Blob occurrences in all: a file of one blob is written whole by a file-write worker. */
  #blobCount = new Uint32Array(1024);
  /** The open descriptor of a partly written file, or -1. */
  #fds = new Int32Array(1024);
  #flags = new Uint8Array(1024);
  #fileCount = 0;
  // Blobs to read, by number: the index row, the first place it goes, and any more places
  // (file, offset pairs: a blob shared by several files or positions).
  readonly #planOfRow = new Map<number, number>();
  #rows = new Uint32Array(1024);
  #firstFile = new Int32Array(1024);
  #firstOffset = new Float64Array(1024);
  readonly #moreTargets = new Map<number, number[]>();
  #blobTotal = 0;
  /** Files (numbers) with an open descriptor, oldest first. */
  readonly #open: number[] = [];
  /** Where packs are read (see #pack): PACK_CONCURRENCY is 1. */
  #readBuf = new Uint8Array(0);
  /** Decompression buffers free for the next blob, one per blob opened at once at most. */
  readonly #decodeBufs: Buffer[] = [];
  /** Writes the files of one blob (most files) on worker threads. */
  readonly #writer: FileWritePool;
  files = 0;
  bytes = 0;

  constructor(repo: Repository, progress: ProgressSink, meta: MetaOptions, target: Buffer, onError: (path: string, err: unknown) => void) {
    this.#targetBytes = target.length;
    this.#repo = repo;
    this.#index = repo.index;
    this.#progress = progress;
    this.#meta = meta;
    this.#onError = onError;
    this.#writer = new FileWritePool(fileWriteWorkers(), meta.owners);
  }

  /** Plans the content of a file (nothing may exist at `dest`); a file with nothing to read is
   *  written at once. */
  async add(dest: Buffer, node: TreeNode): Promise<void> {
    let offset = 0;
    const rows: number[] = [];
    const offsets: number[] = [];
    try {
      for (const ref of node.content ?? []) {
        if (typeof ref === 'number') {
          offset += ref;
          continue;
        }
        const row = this.#index.rowOf(fromHex(ref));
        if (row < 0) throw notIndexed(ref);
        rows.push(row);
        offsets.push(offset);
        offset += this.#index.rawLengthOf(row);
      }
      if (offset !== node.size) throw new CairnError('E_INTEGRITY', `content adds up to ${offset} bytes, the snapshot says ${node.size}`);
    } catch (err) {
      this.#onError(this.#show(dest), err);
      return;
    }
    const f = this.#addFile(dest, node, rows.length);
    rows.forEach((row, i) => this.#addTarget(row, f, offsets[i]!));
    if (rows.length === 0) await this.#writeWhole(f, EMPTY, 0);
  }

  #addFile(dest: Buffer, node: TreeNode, blobs: number): number {
    const f = this.#fileCount++;
    const n = this.#fileCount;
    const slash = dest.lastIndexOf(0x2f);
    const dir = dest.subarray(0, slash + 1);
    const name = dest.subarray(slash + 1);
    let d = this.#dirs.length - 1;
    if (d < 0 || !this.#dirs[d]!.equals(dir)) d = this.#dirs.push(Buffer.from(dir)) - 1;
    this.#dirOf = grown(this.#dirOf, n, (len) => new Uint32Array(len));
    this.#dirOf[f] = d;
    const start = this.#nameStart[f]!;
    this.#names = grown(this.#names, start + name.length, (len) => new Uint8Array(len));
    this.#names.set(name, start);
    this.#nameStart = grown(this.#nameStart, n + 1, (len) => new Float64Array(len));
    this.#nameStart[n] = start + name.length;
    this.#size = grown(this.#size, n, (len) => new Float64Array(len));
    this.#mtime = grown(this.#mtime, n, (len) => new Float64Array(len));
    this.#modeUidGid = grown(this.#modeUidGid, 3 * n, (len) => new Uint32Array(len));
    this.#pending = grown(this.#pending, n, (len) => new Uint32Array(len));
    this.#blobCount = grown(this.#blobCount, n, (len) => new Uint32Array(len));
    this.#fds = grown(this.#fds, n, (len) => new Int32Array(len));
    this.#flags = grown(this.#flags, n, (len) => new Uint8Array(len));
    this.#size[f] = node.size;
    this.#mtime[f] = Number(BigInt(node.mtimeNs) / 1000n) / 1e6;
    this.#modeUidGid[3 * f] = node.mode & 0o7777;
    this.#modeUidGid[3 * f + 1] = node.uid;
    this.#modeUidGid[3 * f + 2] = node.gid;
    this.#pending[f] = blobs;
    this.#blobCount[f] = blobs;
    this.#fds[f] = -1;
    this.#flags[f] = 0;
    return f;
  }

  #addTarget(row: number, file: number, offset: number): void {
    const b = this.#planOfRow.get(row);
    if (b !== undefined) {
      const more = this.#moreTargets.get(b);
      if (more) more.push(file, offset);
      else this.#moreTargets.set(b, [file, offset]);
      return;
    }
    const nb = this.#blobTotal++;
    this.#rows = grown(this.#rows, nb + 1, (len) => new Uint32Array(len));
    this.#firstFile = grown(this.#firstFile, nb + 1, (len) => new Int32Array(len));
    this.#firstOffset = grown(this.#firstOffset, nb + 1, (len) => new Float64Array(len));
    this.#rows[nb] = row;
    this.#firstFile[nb] = file;
    this.#firstOffset[nb] = offset;
    this.#planOfRow.set(row, nb);
  }

  /** Every place blob `b` goes, as (file, offset). */
  #targets(b: number, fn: (file: number, offset: number) => void): void {
    fn(this.#firstFile[b]!, this.#firstOffset[b]!);
    const more = this.#moreTargets.get(b);
    if (more) for (let i = 0; i < more.length; i += 2) fn(more[i]!, more[i + 1]!);
  }

  /** Reads every planned blob and writes it where it belongs. */
  async run(opts: Op): Promise<void> {
    const byPack = new Map<number, number[]>();
    for (let b = 0; b < this.#blobTotal; b++) {
      const p = this.#index.packOf(this.#rows[b]!);
      const list = byPack.get(p);
      if (list) list.push(b);
      else byPack.set(p, [b]);
    }
    let stopped = false;
    try {
      await mapBounded(byPack.values(), PACK_CONCURRENCY, (blobs) => this.#pack(blobs, opts));
      await this.#writer.drain();
      // a file writer that died took its files with it: the restore fails as a whole
      const broken = this.#writer.broken;
      if (broken) throw new CairnError('E_INTERNAL', `restore could not write files: ${broken.message}`, { cause: broken });
    } catch (err) {
      stopped = true;
      throw err;
    } finally {
      // also on failure or abort: no write may still be running, no descriptor left open
      await this.close();
      for (const f of this.#open.splice(0)) this.#closeFd(f);
      if (stopped) this.#removeUnfinished();
    }
  }

  /** Waits for the files handed to the file writers and stops them; run() does so itself, and
   *  a caller whose walk failed before run() calls this. */
  async close(): Promise<void> {
    await this.#writer.drain();
    await this.#writer.close();
  }

  /** After an abort (or any failure that stops the run): removes every file created but not
   *  finished, so none is left looking restored, as a file that fails alone is not. */
  #removeUnfinished(): void {
    for (let f = 0; f < this.#fileCount; f++) {
      if ((this.#flags[f]! & (CREATED | FAILED)) !== CREATED || this.#pending[f] === 0) continue;
      this.#flags[f]! |= FAILED;
      try {
        unlinkSync(this.#path(f));
      } catch {
        // already gone: nothing is left to look restored
      }
    }
  }

  async #pack(blobs: number[], opts: Op): Promise<void> {
    const index = this.#index;
    const offsetOf = (b: number): number => index.offsetOf(this.#rows[b]!);
    blobs.sort((a, b) => offsetOf(a) - offsetOf(b));
    for (const group of ranges(blobs, offsetOf, (b) => index.lengthOf(this.#rows[b]!))) {
      const first = index.at(this.#rows[group[0]!]!);
      const lastRow = this.#rows[group[group.length - 1]!]!;
      let bytes: Uint8Array;
      try {
        const length = index.offsetOf(lastRow) + index.lengthOf(lastRow) - first.offset;
        // one read buffer for every read, grown to the largest: the blobs of a read are opened
        // (into buffers of their own) before the next read, and a new 16-25 MiB buffer per
        // read left ~30 MiB of freed ones in the heap (docs/decisions.md §29)
        if (this.#readBuf.length < length) this.#readBuf = new Uint8Array(length);
        bytes = await this.#repo.store.get({ kind: 'data', name: first.packId }, { offset: first.offset, length }, { ...opts, into: this.#readBuf });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        for (const b of group) this.#failAll(b, err);
        continue;
      }
      await mapBounded(group, BLOB_CONCURRENCY, async (b) => {
        const row = this.#rows[b]!;
        const loc = index.at(row);
        const at = loc.offset - first.offset;
        // a blob is decompressed into a buffer of this call's own, kept for the next blob (see
        // DECODE_BUFFER_BYTES); its bytes are copied or written before the call ends
        const into = loc.rawLength < DECODE_BUFFER_BYTES ? (this.#decodeBufs.pop() ?? Buffer.allocUnsafeSlow(DECODE_BUFFER_BYTES)) : undefined;
        try {
          let data: Uint8Array;
          try {
            data = await this.#repo.reader.openBlob(index.idOf(row), loc, bytes.subarray(at, at + loc.length), into);
          } catch (err) {
            this.#failAll(b, err);
            return;
          }
          const whole: [number, number][] = [];
          this.#targets(b, (f, offset) => {
            if (this.#blobCount[f] === 1) whole.push([f, offset]);
            else this.#guard(f, () => this.#write(f, data, offset));
          });
          for (const [f, offset] of whole) await this.#writeWhole(f, data, offset);
        } finally {
          if (into) this.#decodeBufs.push(into);
        }
      });
    }
  }

  /** Creates, writes and finishes a file of at most one blob on the file-write workers (see
   *  FileWritePool); waits only for room, not for the write. */
  async #writeWhole(f: number, data: Uint8Array, offset: number): Promise<void> {
    if (this.#flags[f]! & FAILED) return;
    if (!this.#writer.hasRoom) await this.#writer.room();
    const file: WholeFile = {
      path: this.#path(f),
      data,
      offset,
      size: this.#size[f]!,
      mode: this.#modeUidGid[3 * f]!,
      uid: this.#modeUidGid[3 * f + 1]!,
      gid: this.#modeUidGid[3 * f + 2]!,
      mtime: this.#mtime[f]!,
    };
    const n = data.length;
    this.#writer.write(file, (err, created) => {
      if (created) this.#flags[f]! |= CREATED;
      // (a broken pool fails the run, not each of its files)
      if (err) return err === this.#writer.broken ? undefined : this.#fail(f, err);
      this.#pending[f] = 0;
      this.bytes += n;
      this.files++;
      this.#progress.add(1, n);
    });
  }

  #write(f: number, data: Uint8Array, offset: number): void {
    const fd = this.#fd(f);
    writeAllAt(fd, data, offset);
    this.bytes += data.length;
    this.#progress.add(0, data.length);
    if (--this.#pending[f]! === 0) this.#finish(f);
  }

  #fd(f: number): number {
    const have = this.#fds[f]!;
    if (have >= 0) return have;
    if (this.#open.length >= MAX_OPEN_FILES) this.#closeFd(this.#open.shift()!);
    const create = this.#flags[f]! & CREATED ? 0 : constants.O_CREAT | constants.O_EXCL;
    const fd = openSync(this.#path(f), constants.O_WRONLY | constants.O_NOFOLLOW | create, 0o600);
    this.#fds[f] = fd;
    this.#flags[f]! |= CREATED;
    this.#open.push(f);
    return fd;
  }

  #closeFd(f: number): void {
    const fd = this.#fds[f]!;
    if (fd < 0) return;
    this.#fds[f] = -1;
    const i = this.#open.indexOf(f);
    if (i >= 0) this.#open.splice(i, 1);
    closeSync(fd);
  }

  #finish(f: number): void {
    finishFile(this.#fd(f), { size: this.#size[f]!, mode: this.#modeUidGid[3 * f]!, uid: this.#modeUidGid[3 * f + 1]!, gid: this.#modeUidGid[3 * f + 2]!, mtime: this.#mtime[f]! }, this.#meta.owners);
    this.#closeFd(f);
    this.files++;
    this.#progress.add(1, 0);
  }

  /** The destination path of file `f` (a new buffer). */
  #path(f: number): Buffer {
    const dir = this.#dirs[this.#dirOf[f]!]!;
    const start = this.#nameStart[f]!;
    const len = this.#nameStart[f + 1]! - start;
    const path = Buffer.allocUnsafe(dir.length + len);
    dir.copy(path, 0);
    path.set(this.#names.subarray(start, start + len), dir.length);
    return path;
  }

  #show(dest: Buffer): string {
    return dest.subarray(this.#targetBytes).toString('utf8');
  }

  #guard(f: number, fn: () => void): void {
    if (this.#flags[f]! & FAILED) return;
    try {
      fn();
    } catch (err) {
      this.#fail(f, err);
    }
  }

  #failAll(b: number, err: unknown): void {
    this.#targets(b, (f) => this.#fail(f, err));
  }

  #fail(f: number, err: unknown): void {
    if (this.#flags[f]! & FAILED) return;
    this.#flags[f]! |= FAILED;
    const path = this.#path(f);
    try {
      this.#closeFd(f);
      if (this.#flags[f]! & CREATED) unlinkSync(path); // a partial file must not pass for a restored one
    } catch {
      // the error that matters is the one being reported (the file may not exist)
    }
    this.#onError(this.#show(path), err);
  }
}

const EMPTY = new Uint8Array(0);

/** Groups blobs sorted by offset into runs read with one ranged read each. */
function ranges(sorted: readonly number[], offsetOf: (b: number) => number, lengthOf: (b: number) => number): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let start = -1;
  let end = -1;
  for (const b of sorted) {
    const offset = offsetOf(b);
    const blobEnd = offset + lengthOf(b);
    if (cur.length > 0 && (offset - end > MERGE_GAP_BYTES || blobEnd - start > READ_SPAN_BYTES)) {
      out.push(cur);
      cur = [];
    }
    if (cur.length === 0) start = offset;
    cur.push(b);
    end = blobEnd;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
