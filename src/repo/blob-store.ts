import { randomBytes } from 'node:crypto';

/** Kinds of objects a repository keeps; each maps to a folder (or key prefix) of its own. */
export type BlobKind = 'config' | 'keys' | 'data' | 'index' | 'snapshots' | 'deleted' | 'locks';

/** A name for a temporary file: what a local store writes before renaming it into place, and
 *  what a writer stages in a store's stagingDir. Readers ignore such names (docs/format.md §1). */
export function tempName(): string {
  return `.tmp-${randomBytes(8).toString('hex')}`;
}

/** Names made by tempName. */
export const TEMP_NAME = /^\.tmp-[0-9a-f]{16}$/;

/** All blob kinds, in the order they are listed by tools. */
export const BLOB_KINDS: readonly BlobKind[] = ['config', 'keys', 'data', 'index', 'snapshots', 'deleted', 'locks'];

/** Names one stored object. `name` is [0-9a-z._-]+ (ids are lowercase hex); `config` has name "cairn.json". */
export interface BlobRef {
  readonly kind: BlobKind;
  readonly name: string;
}

/** What a store knows of one object. `modifiedMs` is the store's own clock (for stale locks). */
export interface BlobInfo {
  readonly ref: BlobRef;
  readonly sizeBytes: number;
  readonly modifiedMs: number;
}

/** A half-open byte range [offset, offset + length). */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Per-call options: every operation that does I/O can be cancelled. */
export interface Op {
  readonly signal?: AbortSignal;
}

/** Options of get. */
export interface GetOptions extends Op {
  /** A buffer to read into: when it holds the bytes asked for, the result is a view of its
   *  start instead of a new buffer (a store reads into it, or copies into it), and the caller
   *  may reuse it once done with the result. A smaller buffer is not used. */
  readonly into?: Uint8Array;
}

/** Options of put. */
export interface PutOptions extends Op {
  /** Fail with a CairnError of code E_BLOB_EXISTS if the object exists (If-None-Match: *).
   *  Used for locks and markers: a create that two writers race on has exactly one winner. */
  readonly ifNoneMatch?: boolean;
}

/**
 * BlobStore holds immutable objects named by kind and name. It is the one seam between the
 * repository and a storage backend (local folder, Azure Blob, S3, memory).
 *
 * - put is atomic: no reader ever sees a partial object, including after a crash mid-put.
 *   put is idempotent for equal bytes (a retry may resend the same body). Without ifNoneMatch
 *   an existing object is replaced atomically. A completed put is durable (fsynced locally) and
 *   visible to get, stat and list.
 * - get returns the whole object or the given range; a range past the end rejects.
 * - list yields every object of a kind, in no particular order, each once.
 * - delete removes an object; deleting a missing object is not an error (idempotent).
 * - A missing object rejects with NotFoundError (code E_BLOB_NOT_FOUND). Errors carry
 *   `retryable`; a PermanentError is never worth retrying.
 * - An aborted signal rejects with an AbortError and leaves nothing half-written.
 * - All methods are safe to call concurrently.
 * - put() does not keep `body` once its promise has resolved: the caller may then reuse it.
 *
 * A store that has a stagingDir also takes objects from files there (putFile): a writer builds
 * a large object (a pack) as a file instead of in memory, and hands it over.
 */
export interface BlobStore {
  /** A short description for messages, e.g. `local:/srv/backup` or `azblob://acct/container`. */
  readonly location: string;
  put(ref: BlobRef, body: Uint8Array, opts?: PutOptions): Promise<void>;
  get(ref: BlobRef, range?: ByteRange, opts?: GetOptions): Promise<Uint8Array>;
  stat(ref: BlobRef, opts?: Op): Promise<BlobInfo>;
  list(kind: BlobKind, opts?: Op): AsyncIterable<BlobInfo>;
  delete(ref: BlobRef, opts?: Op): Promise<void>;
  /** A local folder where a writer may create files named `.tmp-<16 hex>` to give to putFile:
   *  on the store's own file system when it has one, so that putFile moves the file instead of
   *  copying it. Readers ignore such names, so a file left there by a crash harms nothing. */
  readonly stagingDir?: string;
  /** put() of the bytes of the complete, closed file at `path` (in stagingDir; a store without
   *  one may not take files even if it has this method), with put's
   *  guarantees. Once it resolves the file is gone (moved into place, or uploaded and removed);
   *  when it rejects the file is left as it was, for the caller to retry or remove. */
  putFile?(ref: BlobRef, path: string, opts?: PutOptions): Promise<void>;
  /** Removes the files in stagingDir that nobody has written for `olderThanMs` (left by a writer
   *  that was killed); returns how many. A live writer writes its file as its pack fills and
   *  hands it over once full, so an age of a day is far on the safe side, even in a repository
   *  several agents share. */
  sweepStaging?(olderThanMs: number, opts?: Op): Promise<number>;
}
