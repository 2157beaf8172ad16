import { SingleBar } from 'cli-progress';
import { CairnError } from '../core/errors.js';
import type { ProgressSink } from '../engine/progress.js';

/** Writes a command's result: JSON on stdout with --json, text otherwise. */
export function emit(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : text() + (text().endsWith('\n') ? '' : '\n'));
}

/** Formats bytes with binary units. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(2)} ${units[i]}`;
}

/** A progress sink that draws a bar with rate and ETA on a terminal (stderr), and prints only
 *  errors elsewhere. Errors are printed as they happen either way, unless `json`. */
export function progressFor(opts: { json?: boolean; quiet?: boolean }, label: string): ProgressSink & { stop(): void } {
  const tty = process.stderr.isTTY === true && !opts.json && !opts.quiet;
  let files = 0;
  let bytes = 0;
  let totalBytes = 0;
  const bar = tty
    ? new SingleBar({
        format: `${label} [{bar}] {percentage}% | {files} files | {done} | {rate}/s | ETA {eta_formatted}`,
        barCompleteChar: '#',
        barIncompleteChar: '.',
        hideCursor: true,
        stream: process.stderr,
        etaBuffer: 50,
        fps: 4,
      })
    : undefined;
  const started = Date.now();
  bar?.start(1, 0, { files: 0, done: '0 B', rate: '0 B' });
  const update = (): void => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    bar?.update(bytes, { files, done: formatBytes(bytes), rate: formatBytes(bytes / secs) });
  };
  return {
    add(f, b) {
      files += f;
      bytes += b;
      update();
    },
    setTotal(_f, b) {
      totalBytes = b;
      bar?.setTotal(Math.max(totalBytes, 1));
    },
    error(path, err) {
      if (opts.json) return;
      const msg = err instanceof Error ? err.message : String(err);
      if (bar) bar.stop();
      process.stderr.write(`warning: ${path}: ${msg}\n`);
      if (bar) bar.start(Math.max(totalBytes, 1), bytes, { files, done: formatBytes(bytes), rate: '' });
    },
    stop() {
      bar?.stop();
    },
  };
}

/** The message printed for an error that ended a command: what went wrong and what to do. */
export function describeError(err: unknown): string {
  if (err instanceof CairnError) return `error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}
