import { fchmodSync, fchownSync, ftruncateSync, futimesSync, writeSync } from 'node:fs';

/** Writes all of `data` at `position` of the open file `fd`. */
export function writeAllAt(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** What a restored file ends with. */
export interface FinalMeta {
  readonly size: number;
  readonly mode: number;
  /** The owner to give it, or -1 and -1: the file has it already, from its creation (see
   *  Restorer: a restore as root makes most files with the owner they should have, and
   *  fchown was ~4% of its wall time; docs/decisions.md §38). */
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

/** The mode to create a file of final mode `mode` with, under `umask`, and whether the file
 *  then has its final mode already: when it has no set-id or sticky bit (those come after
 *  chown, which clears them) and the umask takes none of its permission bits. Saves a chmod
 *  per file (most files). */
export function createMode(mode: number, umask: number): { create: number; final: boolean } {
  const perm = mode & 0o777;
  return { create: perm, final: (mode & 0o7000) === 0 && (perm & umask) === 0 };
}

/** Gives a restored file, its content written, its size (a trailing hole stays sparse; skipped
 *  when `truncate` is false because the content ends at its size), its owner (when `owners`),
 *  mode (unless `modeSet`: created with it, see createMode) and mtime, in that order: chown
 *  clears set-id bits, so chmod comes after it. Used by restore's file-write workers. */
export function finishFile(fd: number, meta: FinalMeta, owners: boolean, truncate = true, modeSet = false): void {
  if (truncate) ftruncateSync(fd, meta.size);
  if (owners && (meta.uid !== -1 || meta.gid !== -1)) fchownSync(fd, meta.uid, meta.gid);
  if (!modeSet) fchmodSync(fd, meta.mode);
  futimesSync(fd, meta.mtime, meta.mtime);
}
