import type * as CliProgress from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import { createRequire } from 'node:module';
import { CairnError } from '../core/errors.js';
import type { ProgressSink } from '../engine/progress.js';

/** Writes a command's result: JSON on stdout with --json, text otherwise. */
export function emit(json: boolean | undefined, value: unknown, text: () => string): void {
  if (json) {
    process.stdout.write(JSON.stringify(value) + '\n');
    return;
  }
  const t = text();
  process.stdout.write(t.endsWith('\n') ? t : t + '\n');
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

/** A progress sink that draws a bar with rate and ETA on a terminal (stderr) when the total is
 *  known (restore; a backup with a parent snapshot), and files, bytes and rate when it is not.
 *  Errors are printed as they happen unless `json`; nothing is drawn on a pipe. */
export function progressFor(opts: { json?: boolean; quiet?: boolean }, label: string): ProgressSink & { stop(): void } {
  const tty = process.stderr.isTTY === true && !opts.json && !opts.quiet;
  let files = 0;
  let bytes = 0;
  let totalBytes = 0;
  let bar: SingleBar | undefined;
  const started = Date.now();
  const payload = (): Record<string, string | number> => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    return { files, done: formatBytes(bytes), rate: formatBytes(bytes / secs) };
  };
  const ensureBar = (): SingleBar | undefined => {
    if (!tty || bar) return bar;
    const known = totalBytes > 0;
    // required here, not imported: only a terminal draws a bar, and cli-progress with its
    // dependencies costs every other run ~5 MiB
    const { SingleBar: Bar } = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
    bar = new Bar({
      format: known ? `${label} [{bar}] {percentage}% | {files} files | {done} | {rate}/s | ETA {eta_formatted}` : `${label} | {files} files | {done} | {rate}/s`,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      hideCursor: true,
      stream: process.stderr,
      etaBuffer: 50,
      fps: 4,
    });
    bar.start(known ? totalBytes : 1, 0, payload());
    return bar;
  };
  return {
    add(f, b) {
      files += f;
      bytes += b;
      // a total estimated from the parent can be passed: keep the bar at its end, not beyond
      ensureBar()?.update(totalBytes > 0 ? Math.min(bytes, totalBytes) : 0, payload());
    },
    setTotal(_f, b) {
      totalBytes = b;
      if (bar) bar.setTotal(Math.max(b, 1));
    },
    error(path, err) {
      if (opts.json) return;
      const msg = err instanceof Error ? err.message : String(err);
      bar?.stop();
      bar = undefined;
      process.stderr.write(`warning: ${path}: ${msg}\n`);
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
