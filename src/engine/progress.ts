/** Where the engine reports progress; the job layer throttles it into job state, the CLI into a
 *  progress bar. Calls are cheap and synchronous; implementations must not throw. */
export interface ProgressSink {
  /** Files and content bytes done (read, or found unchanged). */
  add(files: number, bytes: number): void;
  /** Expected totals, when known (restore knows them up front). */
  setTotal(files: number, bytes: number): void;
  /** A path that could not be processed; the operation goes on without it. */
  error(path: string, err: unknown): void;
}

/** A sink that ignores everything. */
export const NO_PROGRESS: ProgressSink = { add() {}, setTotal() {}, error() {} };

/** A file system path as a "byte string": one char per byte (latin1), so names that are not valid
 *  UTF-8 pass through unchanged. Convert with toFsPath at each file system call. */
export type BytePath = string;

/** The Buffer that node:fs takes for a byte path. */
export function toFsPath(p: BytePath): Buffer {
  return Buffer.from(p, 'latin1');
}

/** A byte path for a path typed by a person (UTF-8). */
export function fromUserPath(p: string): BytePath {
  return Buffer.from(p, 'utf8').toString('latin1');
}

/** A byte path for display (invalid UTF-8 shown with replacement characters). */
export function displayPath(p: BytePath): string {
  return Buffer.from(p, 'latin1').toString('utf8');
}
