/** Stable error codes. Callers branch on `code` (or the subclass), never on message text. */
export type ErrorCode =
  | 'E_BLOB_NOT_FOUND'
  | 'E_BLOB_EXISTS'
  | 'E_INTEGRITY'
  | 'E_REPO_NOT_FOUND'
  | 'E_REPO_EXISTS'
  | 'E_REPO_LOCKED'
  | 'E_REPO_FORMAT'
  | 'E_WRONG_PASSWORD'
  | 'E_KEY'
  | 'E_CONFIG_INVALID'
  | 'E_USAGE'
  | 'E_SNAPSHOT_NOT_FOUND'
  | 'E_PATH_NOT_FOUND'
  | 'E_TARGET_NOT_EMPTY'
  | 'E_IO'
  | 'E_CANCELLED'
  | 'E_INTERRUPTED'
  | 'E_JOB_NOT_FOUND'
  | 'E_JOB_FINISHED'
  | 'E_SOURCE_NOT_FOUND'
  | 'E_HOOK_FAILED'
  | 'E_UNAUTHORIZED'
  | 'E_FORBIDDEN'
  | 'E_STATE'
  | 'E_INTERNAL';

/** Options shared by every CairnError. */
export interface CairnErrorOptions {
  readonly cause?: unknown;
  /** True when the same call may succeed if tried again (a dropped connection, a busy lock). */
  readonly retryable?: boolean;
  /** What an operator can do about it; shown by the CLI and the API at the edge. */
  readonly hint?: string;
}

/** The one error type of cairn: a stable code, a native cause, and whether a retry may help. */
export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: CairnErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.hint = opts.hint;
  }
}

/** Something looked up by name does not exist (a blob, a snapshot, a path in a snapshot). */
export class NotFoundError extends CairnError {
  constructor(message: string, opts: CairnErrorOptions & { code?: ErrorCode } = {}) {
    super(opts.code ?? 'E_BLOB_NOT_FOUND', message, opts);
  }
}

/** Data failed authentication or its hash does not match its id: never retried, never ignored. */
export class IntegrityError extends CairnError {
  constructor(message: string, opts: CairnErrorOptions = {}) {
    super('E_INTEGRITY', message, opts);
  }
}

/** The repository is locked by another process in a way that conflicts with this operation. */
export class LockedError extends CairnError {
  constructor(message: string, opts: CairnErrorOptions = {}) {
    super('E_REPO_LOCKED', message, { retryable: true, ...opts });
  }
}

/** A configuration or command-line value is invalid; the message names the key and the value. */
export class ConfigError extends CairnError {
  constructor(message: string, opts: CairnErrorOptions & { code?: ErrorCode } = {}) {
    super(opts.code ?? 'E_CONFIG_INVALID', message, opts);
  }
}

/** A failure that will not go away by retrying (permission denied, bad request, quota exceeded). */
export class PermanentError extends CairnError {
  constructor(message: string, opts: CairnErrorOptions & { code?: ErrorCode } = {}) {
    super(opts.code ?? 'E_IO', message, { ...opts, retryable: false });
  }
}

/** Wraps `err` with context for an operator, keeping its code when it is already a CairnError. */
export function wrapError(context: string, err: unknown): CairnError {
  if (err instanceof CairnError) {
    const wrapped = new CairnError(err.code, `${context}: ${err.message}`, { cause: err, retryable: err.retryable, hint: err.hint });
    return wrapped;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CairnError('E_IO', `${context}: ${message}`, { cause: err });
}

/** True when `err` is an AbortSignal cancellation (our own or the platform's AbortError). */
export function isAbortError(err: unknown): boolean {
  return (err instanceof CairnError && err.code === 'E_CANCELLED') || (err instanceof Error && err.name === 'AbortError');
}

/** File-system failures no retry will cure, with what an operator can do about each. */
const PERMANENT_FS: Readonly<Record<string, readonly [cause: string, hint: string]>> = {
  ENOSPC: ['no space left on device', 'free space or move the repository'],
  EDQUOT: ['disk quota exceeded', 'raise the quota or free space'],
  EACCES: ['permission denied', 'let the user running cairn read and write the repository folder'],
  EROFS: ['read-only file system', 'mount the repository read-write'],
  EFBIG: ['file too large', 'raise the file-size limit (ulimit -f) of the user running cairn, or keep the repository on a file system that takes files of its pack size'],
};

/** The errno code of a Node file-system error, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  const code: unknown = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps a file-system failure while `verb`-ing `path` to a CairnError naming the path (a
 *  PermanentError with a hint for a full disk, a quota, a permission, a read-only mount);
 *  aborts and CairnErrors pass through. */
export function fileSystemError(verb: string, path: string, err: unknown, signal?: AbortSignal): unknown {
  if (isAbortError(err) || err instanceof CairnError || (signal?.aborted && err === signal.reason)) return err;
  const permanent = PERMANENT_FS[errnoCode(err) ?? ''];
  if (permanent) return new PermanentError(`${permanent[0]} ${verb} ${path}`, { cause: err, hint: permanent[1] });
  return wrapError(`${verb} ${path}`, err);
}
