import { closeSync, constants, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { FastCdcChunker, type ChunkerParams } from '../core/chunker.js';
import { type GearScanMemory, gearScanMemory } from '../core/gear-scan.js';
import type { IdHasher } from '../core/hash.js';
import { fromHex } from '../core/ids.js';
import { BlobType } from '../core/pack-format.js';
import type { ContentRef } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { BlobWriter } from '../repo/blob-writer.js';
import { type BytePath, toFsPath } from './progress.js';

/** Bounds the bytes of chunks read but not yet sealed into a pack, across all files: memory is
 *  bounded by this budget, not by file sizes or the number of files in flight. */
export class ByteBudget {
  readonly #limit: number;
  readonly #assist: (() => boolean) | undefined;
  #assistScheduled = false;
  #used = 0;
  readonly #waiters: { n: number; resolve: () => void }[] = [];

  /** `assist`: work that frees budget, done on this thread while someone waits for it (it
   *  returns false when it had none): the blob writer's assist(), which seals a batch the seal
   *  workers have not started. It runs once per turn of the event loop, after I/O callbacks,
   *  while there are waiters and it finds work. */
  constructor(limitBytes: number, assist?: () => boolean) {
    this.#limit = limitBytes;
    this.#assist = assist;
  }

  /** Waits until `n` bytes fit (a request larger than the whole budget waits for it to drain). */
  async acquire(n: number): Promise<void> {
    if (this.#waiters.length === 0 && (this.#used === 0 || this.#used + n <= this.#limit)) {
      this.#used += n;
      return;
    }
    const fits = new Promise<void>((resolve) => this.#waiters.push({ n, resolve }));
    this.#assistSoon();
    await fits;
  }

  #assistSoon(): void {
    if (!this.#assist || this.#assistScheduled) return;
    this.#assistScheduled = true;
    setImmediate(() => {
      this.#assistScheduled = false;
      if (this.#waiters.length > 0 && this.#assist!()) this.#assistSoon();
    });
  }

  /** Takes `n` bytes if they fit now and nobody waits before; false otherwise (no wait). */
  tryAcquire(n: number): boolean {
    if (this.#waiters.length > 0 || (this.#used !== 0 && this.#used + n > this.#limit)) return false;
    this.#used += n;
    return true;
  }

  /** Returns `n` bytes. */
  release(n: number): void {
    this.#used -= n;
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0]!;
      if (this.#used !== 0 && this.#used + w.n > this.#limit) break;
      this.#waiters.shift();
      this.#used += w.n;
      w.resolve();
    }
  }
}

/** The content of one file as saved. */
export interface SavedContent {
  readonly content: ContentRef[];
  /** Bytes actually read: the file's size at the time it was read (it may differ from lstat's). */
  readonly sizeBytes: number;
}

/** Files below this size are read with synchronous calls: on a warm cache a small read takes
 *  microseconds, while the promise FileHandle API costs ~50 µs of main-thread time per file in
 *  open/read/close round trips (measured: 30% of a first backup of 20 KiB files). Larger files
 *  are read asynchronously in 4 MiB reads that overlap with hashing and compression. */
const SMALL_FILE_BYTES = 256 * 1024;

/** Bytes read per read() of a large file: 4 MiB keeps the libuv pool busy with few calls. */
const READ_BYTES = 4 * 1024 * 1024;

/** A large file's read buffer, kept for the next file. A read fills what the unfinished chunk
 *  leaves; a chunk that outgrows the buffer (rare: most are within 2x the 1 MiB average) grows
 *  it to at most the max chunk size plus one read, for that file only. 12 MiB buffers from the
 *  start held 2 x 8 MiB more for nothing. */
const READ_BUFFER_BYTES = 4 * 1024 * 1024;

/** Where a file is read into: a large file's buffer is in a GearScanMemory, where the chunker
 *  scans it in WebAssembly, unless none could be had (then it is a plain buffer, scanned in
 *  JavaScript); a file below the min chunk size is read into a plain buffer of its size. */
interface ReadBuffer {
  buf: Buffer;
  readonly memory: GearScanMemory | undefined;
}

/** Zeros to compare chunks with, ZERO_BYTES at a time: a zero buffer of the max chunk size
 *  (8 MiB) stayed resident all through a backup. */
const ZERO_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(ZERO_BYTES);

function allZero(chunk: Buffer): boolean {
  for (let at = 0; at < chunk.length; at += ZERO_BYTES) {
    const end = Math.min(chunk.length, at + ZERO_BYTES);
    if (!chunk.subarray(at, end).equals(ZEROS.subarray(0, end - at))) return false;
  }
  return true;
}

/** Reads `fd` from its current offset to its end into `buf`, one byte longer than the size
 *  the file was stat'ed at: what was read, or undefined when it filled `buf` (the file grew; the
 *  caller reads it another way). A read that stops short at exactly the stat'ed size is the
 *  file's end, as a short read of a regular file is: no second read of 0 bytes to see it (one
 *  system call fewer per small file); should the file have grown meanwhile, what is saved is
 *  the file as it was stat'ed. */
function readWhole(fd: number, buf: Buffer): Buffer | undefined {
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) return buf.subarray(0, n);
    n += got;
    if (n === buf.length - 1) return buf.subarray(0, n);
    if (n === buf.length) return undefined;
  }
}

/** Reads files, cuts them into chunks, and hands chunks that the repository lacks to the blob
 *  writer without waiting for them to be sealed. All-zero chunks become holes and are never
 *  stored. Call drain() before flushing the writer. */
export class FileSaver {
  readonly #writer: Pick<BlobWriter, 'save' | 'saveData' | 'known' | 'copiesData' | 'reserve'>;
  readonly #hasher: IdHasher;
  readonly #gear: Int32Array;
  readonly #params: ChunkerParams;
  readonly #budget: ByteBudget;
  /** Read buffers of large files (READ_BUFFER_BYTES), kept for the next ones: chunks are copied
   *  out of them before they are reused, and a fresh buffer per file cost page faults and heap
   *  growth. */
  readonly #spare: ReadBuffer[] = [];
  /** One buffer for every small file when the writer copies what it is given (see copiesData):
   *  the file is read, hashed and handed over without an await in between. */
  #smallBuf: Buffer | undefined;
  readonly #inflight = new Set<Promise<void>>();
  /** Chunks handed to saveData() and not yet sealed, and who waits for none (drain). */
  #handed = 0;
  #drained: (() => void)[] = [];
  #failure: { err: unknown } | undefined;

  constructor(writer: Pick<BlobWriter, 'save' | 'saveData' | 'known' | 'copiesData' | 'reserve'>, hasher: IdHasher, gear: Int32Array, params: ChunkerParams, budget: ByteBudget) {
    this.#writer = writer;
    this.#hasher = hasher;
    this.#gear = gear;
    this.#params = params;
    this.#budget = budget;
  }

  /** Saves the content of the regular file at `path`, whose lstat size was `sizeHint`. Reads to
   *  the end of the file whatever its size is by then, so a file that grows or shrinks while it
   *  is read is saved as it was read. */
  async save(path: BytePath, sizeHint: number, opts: Op = {}): Promise<SavedContent> {
    // below the min chunk size a file is one chunk (FastCDC cuts nothing before min), so it
    // needs no chunker
    if (sizeHint < Math.min(SMALL_FILE_BYTES, this.#params.minSizeBytes)) {
      // take the budget before reading: a file waiting for it must not hold its bytes meanwhile
      const reserved = sizeHint + 1;
      await this.#budget.acquire(reserved);
      let small: Buffer | undefined;
      try {
        small = this.#readSmall(path, this.#smallBuffer(sizeHint, this.#writer.copiesData));
      } catch (err) {
        this.#budget.release(reserved);
        throw err;
      }
      if (small) {
        // its length is taken first: handing it over may detach it (see #emitNow)
        const sizeBytes = small.length;
        const content: ContentRef[] = [];
        await this.#emit(small, content, opts, reserved);
        return { content, sizeBytes };
      }
      this.#budget.release(reserved);
    }
    const fh = await open(toFsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await this.#read(fh, sizeHint, opts);
    } finally {
      await fh.close();
    }
  }

  /** save() without a promise, for a file small enough to be one chunk, when the writer copies
   *  what it is given and the byte budget has room now: the common case of a first backup, whose
   *  150k files each cost ~7 promise round trips through the async path. Returns undefined when
   *  it cannot (the caller then calls save(), which waits or reads in parts); throws what reading
   *  throws. */
  saveSmallNow(path: BytePath, sizeHint: number, opts: Op = {}): SavedContent | undefined {
    return this.#smallNow(sizeHint, opts, (buf) => this.#readSmall(path, buf));
  }

  /** saveSmallNow() of a file the caller has opened (`fd`, left open) and fstat'ed. */
  saveSmallNowFd(fd: number, sizeHint: number, opts: Op = {}): SavedContent | undefined {
    return this.#smallNow(sizeHint, opts, (buf) => readWhole(fd, buf));
  }

  #smallNow(sizeHint: number, opts: Op, read: (buf: Buffer) => Buffer | undefined): SavedContent | undefined {
    if (sizeHint >= Math.min(SMALL_FILE_BYTES, this.#params.minSizeBytes) || !this.#writer.copiesData || this.#failure) return undefined;
    const reserved = sizeHint + 1;
    if (!this.#budget.tryAcquire(reserved)) return undefined;
    let small: Buffer | undefined;
    try {
      small = read(this.#smallBuffer(sizeHint, true));
    } catch (err) {
      this.#budget.release(reserved);
      throw err;
    }
    if (!small) {
      this.#budget.release(reserved);
      return undefined;
    }
    // its length is taken first: handing it over may detach it (see #emitNow)
    const sizeBytes = small.length;
    const content: ContentRef[] = [];
    this.#emitNow(small, content, opts, reserved);
    return { content, sizeBytes };
  }

  /** A buffer to read a small file of `sizeHint` bytes into, one byte longer to see growth:
   *  when `shared`, room in the seal workers' next batch (see BlobWriter.reserve: the file goes
   *  to them without a copy), or the one shared buffer (see #smallBuf); else a buffer of its
   *  own. */
  #smallBuffer(sizeHint: number, shared: boolean): Buffer {
    if (!shared) return Buffer.allocUnsafe(sizeHint + 1);
    const room = this.#writer.reserve(sizeHint + 1);
    if (room) return room;
    if (!this.#smallBuf || this.#smallBuf.length < sizeHint + 1) this.#smallBuf = Buffer.allocUnsafeSlow(Math.max(sizeHint + 1, SMALL_FILE_BYTES + 1));
    return this.#smallBuf.subarray(0, sizeHint + 1);
  }

  /** Reads a small file whole into `buf` with synchronous calls (see SMALL_FILE_BYTES), or
   *  returns undefined when it has grown past the size where it is one chunk. */
  #readSmall(path: BytePath, buf: Buffer): Buffer | undefined {
    const fd = openSync(toFsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return readWhole(fd, buf);
    } finally {
      closeSync(fd);
    }
  }

  async #read(fh: FileHandle, sizeHint: number, opts: Op): Promise<SavedContent> {
    // below the min chunk size: one chunk, unless the file grew (a buffer of its size)
    if (sizeHint < this.#params.minSizeBytes) return this.#chunkAll(fh, { buf: Buffer.allocUnsafe(sizeHint + 1), memory: undefined }, new FastCdcChunker(this.#gear, this.#params), opts);
    const reused = this.#reusedBytes();
    const room = this.#spare.pop() ?? this.#readBuffer(reused);
    try {
      return await this.#chunkAll(fh, room, new FastCdcChunker(this.#gear, this.#params, room.memory), opts);
    } finally {
      // a buffer grown past the reused size is not kept (a memory does not shrink)
      if (room.buf.length === reused && this.#spare.length < 2) this.#spare.push(room);
    }
  }

  /** A large file's read buffer of `bytes`, growable to a max chunk plus one read. */
  #readBuffer(bytes: number): ReadBuffer {
    const memory = gearScanMemory(this.#gear, bytes, this.#params.maxSizeBytes + READ_BYTES);
    return memory ? { buf: memory.buffer, memory } : { buf: Buffer.allocUnsafeSlow(bytes), memory };
  }

  /** The size of the read buffers kept for reuse: READ_BUFFER_BYTES, or less when the chunker's
   *  max chunk plus one read is smaller (tests use small chunks). */
  #reusedBytes(): number {
    return Math.min(READ_BUFFER_BYTES, this.#params.maxSizeBytes + READ_BYTES);
  }

  /** Reads `fh` to its end into `room` (growing it as a chunk needs), cutting and emitting chunks
   *  as they complete. */
  async #chunkAll(fh: FileHandle, room: ReadBuffer, chunker: FastCdcChunker, opts: Op): Promise<SavedContent> {
    const max = this.#params.maxSizeBytes;
    const content: ContentRef[] = [];
    let buf = room.buf;
    let start = 0;
    let fill = 0;
    let scan = 0;
    let total = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (fill === buf.length) {
        if (start > 0) {
          buf.copyWithin(0, start, fill);
          fill -= start;
          scan -= start;
          start = 0;
        } else {
          // nothing refers to the old buffer: emitted chunks were copied out of it
          const size = Math.min(Math.max(buf.length * 2, 64 * 1024), max + READ_BYTES);
          if (room.memory) room.buf = room.memory.grow(size);
          else {
            const bigger = size > this.#reusedBytes() ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
            buf.copy(bigger, 0, 0, fill);
            room.buf = bigger;
          }
          buf = room.buf;
        }
      }
      const { bytesRead } = await fh.read(buf, fill, Math.min(buf.length - fill, READ_BYTES), null);
      fill += bytesRead;
      total += bytesRead;
      const eof = bytesRead === 0;
      while (scan < fill) {
        const cut = chunker.nextCut(buf.subarray(scan, fill));
        if (cut < 0) {
          scan = fill;
          break;
        }
        scan += cut;
        await this.#emit(buf.subarray(start, scan), content, opts);
        start = scan;
      }
      if (eof) {
        if (start < fill) await this.#emit(buf.subarray(start, fill), content, opts);
        break;
      }
    }
    return { content, sizeBytes: total };
  }

  /** Waits for every chunk handed to the writer to be sealed into a pack; rethrows the first
   *  failure. Call before flushing the writer. */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    if (this.#handed > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.err;
  }

  /** Hashes one chunk and hands it to the writer unless it is known. `reserved`: bytes of budget
   *  the caller took for this chunk, whose memory it then owns (no copy is needed); 0 when the
   *  chunk lies in a reused read buffer. */
  async #emit(chunk: Buffer, content: ContentRef[], opts: Op, reserved = 0): Promise<void> {
    if (reserved > 0) {
      this.#emitNow(chunk, content, opts, reserved);
      return;
    }
    this.#throwIfFailed();
    const n = chunk.length;
    if (this.#isHole(chunk, content)) return;
    const hex = this.#hasher.id(chunk);
    const id = fromHex(hex);
    content.push(hex);
    if (this.#writer.known(id)) return;
    await this.#budget.acquire(n);
    // a chunk in the reused read buffer is copied, unless the writer copies it before save() returns
    this.#hand(id, hex, this.#writer.copiesData ? chunk : Buffer.from(chunk), n, opts);
  }

  /** #emit for a chunk whose `reserved` bytes of budget the caller took and whose memory it
   *  hands over: nothing to wait for. `chunk` must not be read after this returns: when it lies
   *  in room from reserve() and fills its batch, the seal pool may have transferred the batch's
   *  buffer to a worker, leaving `chunk` detached (length 0). A file recorded with size 0 and
   *  one chunk, which restore then refused, was how this showed. */
  #emitNow(chunk: Buffer, content: ContentRef[], opts: Op, reserved: number): void {
    try {
      this.#throwIfFailed();
    } catch (err) {
      this.#budget.release(reserved);
      throw err;
    }
    if (this.#isHole(chunk, content)) {
      this.#budget.release(reserved);
      return;
    }
    const hex = this.#hasher.id(chunk);
    content.push(hex);
    // a known blob is not taken: #hand gives its budget back (the writer looks it up once)
    this.#hand(fromHex(hex), hex, chunk, reserved, opts);
  }

  /** Records an all-zero (or empty) chunk as a hole in `content`; false for any other chunk. */
  #isHole(chunk: Buffer, content: ContentRef[]): boolean {
    const n = chunk.length;
    if (n !== 0 && (chunk[0] !== 0 || chunk[n - 1] !== 0 || !allZero(chunk))) return false;
    if (n === 0) return true;
    const last = content[content.length - 1];
    if (typeof last === 'number') content[content.length - 1] = last + n;
    else content.push(n);
    return true;
  }

  /** Hands a chunk to the writer, which takes it unless it is known (then `held` goes back at
   *  once), holding `held` bytes of budget until it is sealed. Not awaited: the file's content
   *  list is complete once its chunks are hashed, so the walk goes on while chunks are sealed;
   *  the budget bounds what is in flight, and drain() waits for all of it before the writer
   *  flushes. */
  #hand(id: Uint8Array, hex: string, data: Buffer, held: number, opts: Op): void {
    if (this.#writer.copiesData) {
      // a callback, not a promise, per chunk: ~150k of them on a first backup
      let taken: boolean;
      try {
        taken = this.#writer.saveData(id, hex, data, opts, (err) => {
          if (err !== undefined) this.#failure ??= { err };
          this.#budget.release(held);
          if (--this.#handed === 0) for (const resolve of this.#drained.splice(0)) resolve();
        });
      } catch (err) {
        this.#failure ??= { err };
        taken = false;
      }
      if (taken) this.#handed++;
      else this.#budget.release(held);
      return;
    }
    // (one reaction per chunk, not a then and a finally)
    const settled = (): void => {
      this.#budget.release(held);
      this.#inflight.delete(p);
    };
    const p: Promise<void> = this.#writer.save(BlobType.data, id, data, opts, hex).then(settled, (err: unknown) => {
      this.#failure ??= { err };
      settled();
    });
    this.#inflight.add(p);
  }
}
