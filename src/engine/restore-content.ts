import { unlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CairnError } from '../core/errors.js';
import { type GrowableArray, type GrowableConstructor, grownTo } from '../core/growable.js';
import { fromHex } from '../core/ids.js';
import type { TreeNode } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import { notIndexed } from '../repo/blob-reader.js';
import type { CompactIndex } from '../repo/compact-index.js';
import type { Repository } from '../repo/repository.js';
import type { FinalMeta } from './file-finish.js';
import { FileWritePool, type FilePart, type SealedBlob, type WholeFile } from './file-write-pool.js';
import type { ProgressSink } from './progress.js';

/** File flags in the plan. */
const CREATED = 1;
const FAILED = 2;
/** Written whole, with its metadata. */
const FINISHED = 4;
/** Created with the owner it should have: no chown (see Owner). */
const OWNED = 8;

/** A copy of a path kept until the end of the restore. A small Buffer is a slice of an 8 KiB
 *  pool that it keeps alive: the 3,900 directory paths of a 150k-file restore held 22 MiB. */
export function own(p: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(p.length);
  b.set(p);
  return b;
}

/** Grows a typed array to hold at least `n` items (doubling), keeping its contents: in place
 *  when large (see grownTo). */
function grown<T extends GrowableArray>(a: T, n: number, make: GrowableConstructor<T>): T {
  return n <= a.length ? a : grownTo(a, Math.max(n, 2 * a.length), make);
}

/** Needed blobs closer than this are read with one ranged read, skipping the gap. */
const MERGE_GAP_BYTES = 4 * 1024 * 1024;
/** A ranged read spans at most this many bytes (or one blob, if larger): the two read buffers
 *  are kept for the whole restore, and whole-pack reads had grown one to ~25 MiB. 2 MiB spans
 *  against 4: a 150k-file restore peaked ~10 MiB lower (three alternating runs), at a speed
 *  within the runs' noise (docs/decisions.md §34). */
const READ_SPAN_BYTES = 2 * 1024 * 1024;
/** Worker threads that open blobs and create and write files: mostly kernel time and
 *  decompression, which spread over cores (docs/decisions.md §29, §31). */
function fileWriteWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** The owner a file gets when it is created in a folder. Run as root, restore skips the chown
 *  of a file whose snapshot owner is that one (docs/decisions.md §38). */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** How a file's metadata is applied once its content is complete. */
export interface MetaOptions {
  readonly owners: boolean;
}

/**
 * Restores file contents pack by pack, as restic's restorer does: every pack is read once (in
 * few ranged reads), each blob in it is opened and verified (once per batch of file writes it
 * goes to), and written to every file and offset that holds it. A file is finished (truncated
 * to its size, so trailing holes stay sparse; owner, mode and mtime set through its descriptor)
 * when its last blob lands. Files are written on file-write workers (FileWritePool), a batch at
 * a time to the least busy: a file of one blob (most files) in one op, a larger file blob by
 * blob as its packs are read, the worker of its first blob keeping it open in between. The
 * workers also open (decrypt, decompress, verify) the blobs they write: this thread plans,
 * reads packs and hands each blob over as it was read (docs/decisions.md §31, §39).
 */
export class ContentRestorer {
  readonly #repo: Repository;
  /** The index the plan's rows point into (the repository's, as the restore started). */
  readonly #index: CompactIndex;
  readonly #progress: ProgressSink;
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
  /** Blob occurrences not yet handed to the file writers. */
  #pending = new Uint32Array(1024);
  /** Blob occurrences in all: a file of one blob is written whole by a file-write worker. */
  #blobCount = new Uint32Array(1024);
  #flags = new Uint8Array(1024);
  #fileCount = 0;
  // Blobs to read, by number: the index row, the first place it goes, and any more places
  // (file, offset pairs: a blob shared by several files or positions).
  /** Each index row's blob number + 1 (0: not planned). A Map of 147k rows was a 7 MiB table
   *  in V8's large-object space for the whole restore; this is 4 bytes a row. */
  #planOfRow = new Int32Array(1024);
  #rows = new Uint32Array(1024);
  #firstFile = new Int32Array(1024);
  #firstOffset = new Float64Array(1024);
  readonly #moreTargets = new Map<number, number[]>();
  /** Spread parts (see #writePart) not yet written, by file. */
  readonly #spreadOut = new Map<number, number>();
  #blobTotal = 0;
  /** Where spans of packs are read: the next span is read into one while the blobs of the
   *  last are handed over from the other. */
  readonly #readBufs = [new Uint8Array(0), new Uint8Array(0)];
  /** Opens blobs and writes every file, on worker threads. */
  readonly #writer: FileWritePool;
  files = 0;
  bytes = 0;

  constructor(repo: Repository, progress: ProgressSink, meta: MetaOptions, target: Buffer, onError: (path: string, err: unknown) => void) {
    this.#targetBytes = target.length;
    this.#repo = repo;
    this.#index = repo.index;
    this.#progress = progress;
    this.#onError = onError;
    this.#writer = new FileWritePool(fileWriteWorkers(), meta.owners, { dataKey: repo.master.dataKey, idKey: repo.master.idKey });
  }

  /** Plans the content of a file (nothing may exist at `dest`); a file with nothing to read is
   *  written at once, and a promise returned while it waits for the writers' room.
   *  `created`: the owner a file made at `dest` has, when known. */
  add(dest: Buffer, node: TreeNode, created?: Owner): Promise<void> | undefined {
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
      return undefined;
    }
    const f = this.#addFile(dest, node, rows.length, created !== undefined && created.uid === node.uid && created.gid === node.gid);
    rows.forEach((row, i) => this.#addTarget(row, f, offsets[i]!));
    return rows.length === 0 ? this.#writeWhole(f, undefined, 0, 0) : undefined;
  }

  #addFile(dest: Buffer, node: TreeNode, blobs: number, owned: boolean): number {
    const f = this.#fileCount++;
    const n = this.#fileCount;
    const slash = dest.lastIndexOf(0x2f);
    const dir = dest.subarray(0, slash + 1);
    const name = dest.subarray(slash + 1);
    let d = this.#dirs.length - 1;
    if (d < 0 || !this.#dirs[d]!.equals(dir)) d = this.#dirs.push(own(dir)) - 1;
    this.#dirOf = grown(this.#dirOf, n, Uint32Array);
    this.#dirOf[f] = d;
    const start = this.#nameStart[f]!;
    this.#names = grown(this.#names, start + name.length, Uint8Array);
    this.#names.set(name, start);
    this.#nameStart = grown(this.#nameStart, n + 1, Float64Array);
    this.#nameStart[n] = start + name.length;
    this.#size = grown(this.#size, n, Float64Array);
    this.#mtime = grown(this.#mtime, n, Float64Array);
    this.#modeUidGid = grown(this.#modeUidGid, 3 * n, Uint32Array);
    this.#pending = grown(this.#pending, n, Uint32Array);
    this.#blobCount = grown(this.#blobCount, n, Uint32Array);
    this.#flags = grown(this.#flags, n, Uint8Array);
    this.#size[f] = node.size;
    this.#mtime[f] = Number(BigInt(node.mtimeNs) / 1000n) / 1e6;
    this.#modeUidGid[3 * f] = node.mode & 0o7777;
    this.#modeUidGid[3 * f + 1] = node.uid;
    this.#modeUidGid[3 * f + 2] = node.gid;
    this.#pending[f] = blobs;
    this.#blobCount[f] = blobs;
    this.#flags[f] = owned ? OWNED : 0;
    return f;
  }

  #addTarget(row: number, file: number, offset: number): void {
    this.#planOfRow = grown(this.#planOfRow, row + 1, Int32Array);
    const b = this.#planOfRow[row]! - 1;
    if (b >= 0) {
      const more = this.#moreTargets.get(b);
      if (more) more.push(file, offset);
      else this.#moreTargets.set(b, [file, offset]);
      return;
    }
    const nb = this.#blobTotal++;
    this.#rows = grown(this.#rows, nb + 1, Uint32Array);
    this.#firstFile = grown(this.#firstFile, nb + 1, Int32Array);
    this.#firstOffset = grown(this.#firstOffset, nb + 1, Float64Array);
    this.#rows[nb] = row;
    this.#firstFile[nb] = file;
    this.#firstOffset[nb] = offset;
    this.#planOfRow[row] = nb + 1;
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
      // one span read ahead: the blobs of one span are handed over while the next is read (one
      // read at a time made this thread wait for each, and a remote store's latency adds up)
      const spans = this.#spans(byPack.values());
      let buf = 0;
      let next = this.#read(spans.next(), buf, opts);
      while (next) {
        const read = await next;
        if (!read.ok && opts.signal?.aborted) throw read.err;
        buf ^= 1;
        next = this.#read(spans.next(), buf, opts);
        if (read.ok) await this.#handOver(read.span, read.bytes);
        else for (const b of read.span.blobs) this.#failAll(b, read.err);
      }
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
      if (stopped) this.#removeUnfinished();
    }
  }

  /** Waits for the files handed to the file writers and stops them; run() does so itself, and
   *  a caller whose walk failed before run() calls this. */
  async close(): Promise<void> {
    await this.#writer.drain();
    await this.#writer.close();
  }

  /** After an abort (or any failure that stops the run; the file writers have closed every
   *  file): removes every file created but not finished, so none is left looking restored, as
   *  a file that fails alone is not. */
  #removeUnfinished(): void {
    for (let f = 0; f < this.#fileCount; f++) {
      if ((this.#flags[f]! & (CREATED | FAILED | FINISHED)) !== CREATED) continue;
      this.#flags[f]! |= FAILED;
      try {
        unlinkSync(this.#path(f));
      } catch {
        // already gone: nothing is left to look restored
      }
    }
  }

  /** The ranged reads of every pack, in the order of the packs' first needed blob. */
  *#spans(packs: Iterable<number[]>): Generator<Span> {
    const index = this.#index;
    const offsetOf = (b: number): number => index.offsetOf(this.#rows[b]!);
    for (const blobs of packs) {
      blobs.sort((a, b) => offsetOf(a) - offsetOf(b));
      for (const group of ranges(blobs, offsetOf, (b) => index.lengthOf(this.#rows[b]!))) {
        const first = index.at(this.#rows[group[0]!]!);
        const lastRow = this.#rows[group[group.length - 1]!]!;
        yield { blobs: group, packId: first.packId, offset: first.offset, length: index.offsetOf(lastRow) + index.lengthOf(lastRow) - first.offset };
      }
    }
  }

  /** Starts reading a span into read buffer `buf` (grown to the largest span: a new 4 MiB
   *  buffer per read left freed ones in the heap, docs/decisions.md §29); never rejects. */
  #read(it: IteratorResult<Span>, buf: number, opts: Op): Promise<SpanRead> | undefined {
    if (it.done) return undefined;
    const span = it.value;
    if (this.#readBufs[buf]!.length < span.length) this.#readBufs[buf] = new Uint8Array(span.length);
    return this.#repo.store.get({ kind: 'data', name: span.packId }, { offset: span.offset, length: span.length }, { ...opts, into: this.#readBufs[buf] }).then(
      (bytes): SpanRead => ({ span, ok: true, bytes }),
      (err: unknown): SpanRead => ({ span, ok: false, err }),
    );
  }

  /** Hands every blob of a span read to the file writers (which open and verify it) for every
   *  place it goes (in one batch, its bytes once for consecutive places). */
  async #handOver(span: Span, bytes: Uint8Array): Promise<void> {
    const index = this.#index;
    const places: number[] = [];
    for (const b of span.blobs) {
      const row = this.#rows[b]!;
      const loc = index.at(row);
      const at = loc.offset - span.offset;
      // the sealed bytes are copied into a batch before the next span is read into this buffer
      const blob: SealedBlob = { id: index.idOf(row), type: loc.type, packId: loc.packId, salt: loc.salt, rawLength: loc.rawLength, sealed: bytes.subarray(at, at + loc.length) };
      places.length = 0;
      this.#targets(b, (f, offset) => places.push(f, offset));
      for (let i = 0; i < places.length; i += 2) {
        const f = places[i]!;
        if (this.#blobCount[f] === 1) await this.#writeWhole(f, blob, places[i + 1]!, loc.rawLength);
        else await this.#writePart(f, blob, places[i + 1]!, loc.rawLength);
      }
    }
  }

  /** Has a file of at most one blob created, written and finished by a file-write worker (see
   *  FileWritePool); waits only for room, not for the write. */
  async #writeWhole(f: number, content: SealedBlob | undefined, offset: number, n: number): Promise<void> {
    if (this.#flags[f]! & FAILED) return;
    if (!this.#writer.hasRoom) await this.#writer.room();
    if (this.#flags[f]! & FAILED) return;
    const file: WholeFile = {
      path: this.#path(f),
      ...(content ? { content } : {}),
      offset,
      size: this.#size[f]!,
      mode: this.#modeUidGid[3 * f]!,
      uid: this.#uid(f),
      gid: this.#gid(f),
      mtime: this.#mtime[f]!,
    };
    this.#writer.write(file, (err, created) => {
      if (created) this.#flags[f]! |= CREATED;
      // (a broken pool fails the run, not each of its files)
      if (err) return err === this.#writer.broken ? undefined : this.#fail(f, err);
      this.#flags[f]! |= FINISHED;
      this.bytes += n;
      this.files++;
      this.#progress.add(1, n);
    });
  }

  /** Hands a blob of a file of several blobs to a file-write worker; waits only for room, not
   *  for the write. Until the file's first part has made it, its parts go to that part's
   *  worker (the first creates the file, the last finishes it); after, to the least busy, so
   *  a large file's parts are written on every worker at once (its blobs fill whole spans
   *  of a pack, and one worker wrote them while the other had nothing: ~1 s of a 150k-file
   *  restore, docs/decisions.md §44), and the file is finished once they are all written. */
  async #writePart(f: number, content: SealedBlob, offset: number, n: number): Promise<void> {
    if (this.#flags[f]! & FAILED) return;
    if (!this.#writer.hasRoom) await this.#writer.room();
    if (this.#flags[f]! & FAILED) return;
    const last = --this.#pending[f]! === 0;
    const out = this.#spreadOut.get(f) ?? 0;
    if (this.#flags[f]! & CREATED && (!last || out > 0)) {
      this.#spreadOut.set(f, out + 1);
      this.#writer.writePart({ path: this.#path(f), key: f, content, offset, spread: true }, (err) => this.#spreadDone(f, n, err));
      return;
    }
    const part: FilePart = { path: this.#path(f), key: f, content, offset, ...(last ? { last: this.#finalMeta(f) } : {}) };
    this.#writer.writePart(part, (err, created) => {
      if (created) this.#flags[f]! |= CREATED;
      // (a broken pool fails the run, not each of its files; the worker has removed a file
      // whose part failed, and skips its later parts)
      if (err) return err === this.#writer.broken ? undefined : this.#report(f, err);
      this.bytes += n;
      this.#progress.add(last ? 1 : 0, n);
      if (!last) return;
      this.#flags[f]! |= FINISHED;
      this.files++;
    });
  }

  /** A spread part of file `f` (`n` bytes) is written, or failed: the file is finished once
   *  its last part is handed over and every spread part is written; a failed part has the
   *  file's own worker remove it. */
  #spreadDone(f: number, n: number, err: (Error & { code?: string }) | undefined): void {
    const left = this.#spreadOut.get(f)! - 1;
    if (left === 0) this.#spreadOut.delete(f);
    else this.#spreadOut.set(f, left);
    if (err) {
      // (a broken pool fails the run; a file failed already was reported, and removed or
      // abandoned, then)
      if (err === this.#writer.broken || this.#flags[f]! & FAILED) return;
      this.#report(f, err);
      this.#writer.abandon({ path: this.#path(f), key: f });
      return;
    }
    this.bytes += n;
    this.#progress.add(0, n);
    if (left > 0 || this.#pending[f] !== 0 || this.#flags[f]! & FAILED) return;
    this.#writer.finish({ path: this.#path(f), key: f, last: this.#finalMeta(f) }, (e) => {
      // (the worker has removed a file it could not finish)
      if (e) return e === this.#writer.broken ? undefined : this.#report(f, e);
      this.#flags[f]! |= FINISHED;
      this.files++;
      this.#progress.add(1, 0);
    });
  }

  /** What finishing file `f` sets. */
  #finalMeta(f: number): FinalMeta {
    return { size: this.#size[f]!, mode: this.#modeUidGid[3 * f]!, uid: this.#uid(f), gid: this.#gid(f), mtime: this.#mtime[f]! };
  }

  /** The owner to give file `f`: -1 and -1 when it is created with it (see FinalMeta). */
  #uid(f: number): number {
    return this.#flags[f]! & OWNED ? -1 : this.#modeUidGid[3 * f + 1]!;
  }

  #gid(f: number): number {
    return this.#flags[f]! & OWNED ? -1 : this.#modeUidGid[3 * f + 2]!;
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

  #failAll(b: number, err: unknown): void {
    this.#targets(b, (f) => this.#fail(f, err));
  }

  /** A file that cannot be restored: reported, and removed if it was created (a partial file
   *  must not pass for a restored one). A file of several blobs is removed by its file-write
   *  worker, after the parts already handed to it. */
  #fail(f: number, err: unknown): void {
    if (this.#flags[f]! & FAILED) return;
    const path = this.#path(f);
    if (this.#blobCount[f]! > 1) {
      // parts of it may be queued, and the first may not have created it yet
      if (this.#pending[f] !== this.#blobCount[f]) this.#writer.abandon({ path, key: f });
    } else if (this.#flags[f]! & CREATED) {
      try {
        unlinkSync(path);
      } catch {
        // the error that matters is the one being reported (the file may not exist)
      }
    }
    this.#report(f, err);
  }

  /** Marks a file failed and reports it (once). */
  #report(f: number, err: unknown): void {
    if (this.#flags[f]! & FAILED) return;
    this.#flags[f]! |= FAILED;
    this.#onError(this.#show(this.#path(f)), err);
  }
}

/** One ranged read of a pack: its blobs, sorted by offset, and the bytes that hold them. */
interface Span {
  readonly blobs: number[];
  readonly packId: string;
  readonly offset: number;
  readonly length: number;
}

/** A span and its bytes, or why they could not be read. */
type SpanRead = { span: Span; ok: true; bytes: Uint8Array } | { span: Span; ok: false; err: unknown };

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
