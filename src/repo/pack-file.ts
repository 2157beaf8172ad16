import { Blake3Hasher } from '@napi-rs/blake-hash';
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileSystemError } from '../core/errors.js';
import type { PackId } from '../core/ids.js';
import type { PackEntry } from '../core/pack-format.js';
import { tempName } from './blob-store.js';
import type { RandomBytes } from '../core/ids.js';
import { type FinishedPack, type PackOutput, PackBuilder, type StagedPack } from './pack-writer.js';

/** Bytes gathered before one write(): few system calls for many small blobs. Blobs at least
 *  this large are written straight from where they were sealed. */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * Builds packs as files in a store's staging folder (BlobStore.stagingDir), for putFile: a pack
 * then never sits whole in memory, where ~3 of them had been (up to 25 MiB each: the one being
 * filled, a spare, and the one being stored; docs/decisions.md §28). The pack's name, the
 * unkeyed BLAKE3 of its bytes, is hashed as they are written. Synchronous: on a seal worker,
 * whose thread has nothing else to do meanwhile; on the main thread (tree packs), a few 1 MiB
 * writes into the page cache. Not fsynced here: the store's putFile makes the file durable
 * before it names it.
 */
export class FilePackOutput implements PackOutput<StagedPack> {
  readonly #dir: string;
  readonly #buf = Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
  readonly #hasher = new Blake3Hasher();
  #fill = 0;
  #fd = -1;
  #path = '';
  #size = 0;

  constructor(dir: string) {
    this.#dir = dir;
  }

  append(pieces: readonly Uint8Array[]): void {
    if (this.#fd < 0) this.#open();
    for (const p of pieces) {
      if (p.length >= WRITE_BUFFER_BYTES) {
        this.#flush();
        this.#write(p);
        continue;
      }
      if (this.#fill + p.length > WRITE_BUFFER_BYTES) this.#flush();
      this.#buf.set(p, this.#fill);
      this.#fill += p.length;
    }
  }

  end(footer: Uint8Array, salt: Uint8Array, entries: PackEntry[]): StagedPack {
    this.append([footer]);
    this.#flush();
    const file = this.#path;
    const sizeBytes = this.#size;
    try {
      closeSync(this.#fd);
    } catch (err) {
      this.discard();
      throw fileSystemError('writing', file, err);
    }
    this.#fd = -1;
    const packId = this.#hasher.digest('hex') as PackId;
    this.#hasher.reset();
    this.#path = '';
    this.#size = 0;
    return { packId, salt, entries, file, sizeBytes };
  }

  discard(): void {
    this.#fill = 0;
    this.#size = 0;
    this.#hasher.reset();
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // the file goes anyway
    }
    this.#fd = -1;
    try {
      unlinkSync(this.#path);
    } catch {
      // a file left behind is ignored by readers (a .tmp- name)
    }
    this.#path = '';
  }

  #open(): void {
    // a temporary name, like a store's own: a file left by a crash is ignored by every reader
    const path = join(this.#dir, tempName());
    try {
      this.#fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      throw fileSystemError('creating', path, err);
    }
    this.#path = path;
  }

  #flush(): void {
    if (this.#fill === 0) return;
    const n = this.#fill;
    this.#fill = 0;
    this.#write(this.#buf.subarray(0, n));
  }

  #write(bytes: Uint8Array): void {
    try {
      for (let done = 0; done < bytes.length;) done += writeSync(this.#fd, bytes, done, bytes.length - done);
    } catch (err) {
      const path = this.#path;
      this.discard();
      throw fileSystemError('writing', path, err);
    }
    this.#hasher.update(bytes);
    this.#size += bytes.length;
  }
}

/** A pack builder that builds packs as staged files in `stagingDir` (a store's, see
 *  BlobStore.stagingDir) when there is one, else in memory (a store without one keeps its
 *  objects in memory anyway). Seal workers and the blob writer's own builders are made here. */
export function packBuilder(dataKey: Uint8Array, random: RandomBytes, targetBytes: number, stagingDir: string | undefined): PackBuilder<FinishedPack | StagedPack> {
  return stagingDir !== undefined ? new PackBuilder<StagedPack>(dataKey, random, targetBytes, new FilePackOutput(stagingDir)) : new PackBuilder(dataKey, random, targetBytes);
}
