import type { ProgressSink } from '../engine/progress.js';
import type { JobProgress } from './job.js';

/** Seconds of samples the rate is measured over: long enough to smooth the bursts of a
 *  pack upload, short enough to follow a change of pace within a few refreshes. */
const RATE_WINDOW_MS = 5_000;

/**
 * Collects a running job's progress from the engine (a ProgressSink: cheap, synchronous calls)
 * and turns it, when asked (about once a second), into the job's progress record with a rate
 * and an ETA.
 */
export class ProgressTracker implements ProgressSink {
  #phase = 'starting';
  #files = 0;
  #bytes = 0;
  #errors = 0;
  #filesTotal: number | undefined;
  #bytesTotal: number | undefined;
  readonly #samples: { atMs: number; bytes: number }[] = [];
  readonly #onError: ((path: string, err: unknown) => void) | undefined;

  constructor(onError?: (path: string, err: unknown) => void) {
    this.#onError = onError;
  }

  add(files: number, bytes: number): void {
    this.#files += files;
    this.#bytes += bytes;
  }

  setTotal(files: number, bytes: number): void {
    this.#filesTotal = files;
    this.#bytesTotal = bytes;
  }

  error(path: string, err: unknown): void {
    this.#errors++;
    this.#onError?.(path, err);
  }

  /** Names what the job is doing now ('pre hook', 'backup', 'post hook', 'restore'...). */
  setPhase(phase: string): void {
    this.#phase = phase;
  }

  /** The progress record as of nowMs. */
  snapshot(nowMs: number): JobProgress {
    this.#samples.push({ atMs: nowMs, bytes: this.#bytes });
    while (this.#samples.length > 2 && this.#samples[0]!.atMs < nowMs - RATE_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!;
    const spanMs = nowMs - first.atMs;
    const rate = spanMs > 0 ? Math.round(((this.#bytes - first.bytes) * 1000) / spanMs) : 0;
    const left = this.#bytesTotal !== undefined ? Math.max(0, this.#bytesTotal - this.#bytes) : undefined;
    return {
      phase: this.#phase,
      files: this.#files,
      bytes: this.#bytes,
      ...(this.#filesTotal !== undefined ? { filesTotal: this.#filesTotal } : {}),
      ...(this.#bytesTotal !== undefined ? { bytesTotal: this.#bytesTotal } : {}),
      rateBytesPerSec: rate,
      ...(left !== undefined && rate > 0 ? { etaSeconds: Math.ceil(left / rate) } : {}),
      errors: this.#errors,
    };
  }
}
