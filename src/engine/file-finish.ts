import { fchmodSync, fchownSync, ftruncateSync, futimesSync, writeSync } from 'node:fs';

/** Writes all of `data` at `position` of the open file `fd`. */
export function writeAllAt(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** What a restored file ends with. */
export interface FinalMeta {
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

/** Gives a restored file, its content written, its size (a trailing hole stays sparse; skipped
 *  when `truncate` is false because the content ends at its size), its owner (when `owners`),
 *  mode and mtime, in that order: chown clears set-id bits, so chmod comes after it. Used for
 *  the files restore writes itself and the ones its file-write workers write. */
export function finishFile(fd: number, meta: FinalMeta, owners: boolean, truncate = true): void {
  if (truncate) ftruncateSync(fd, meta.size);
  if (owners) fchownSync(fd, meta.uid, meta.gid);
  fchmodSync(fd, meta.mode);
  futimesSync(fd, meta.mtime, meta.mtime);
}
