import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { CairnError } from '../core/errors.js';
import { type Excluder, compileExcludes } from '../engine/excludes.js';
import { PathIndex } from './path-index.js';

/** What the next backup of a source must scan. */
export interface ScanPlan {
  /** true: scan everything (watcher not ready, failed, overflowed, restarted, or the last full scan is older than fullScanEveryMs). */
  readonly full: boolean;
  /** For BackupOptions.changes when !full. */
  mayHaveChanged(dir: string): boolean;
  /** Number of journaled paths this plan covers. */
  readonly paths: number;
  /** The journaled paths themselves (empty when full), to hand to an engine in another thread. */
  readonly changed: readonly string[];
  /** The snapshot the journal counts changes from (the last committed one); a narrowed backup
   *  must have it as its parent. */
  readonly base: string | undefined;
  /** Call after the backup succeeded, with its snapshot: forgets what this plan covered (paths
   *  journaled after plan() stay), records a full scan when full, and makes the snapshot the
   *  base of the next plans. */
  commit(snapshotId: string): void;
}

/** Where a journal's watcher is: `failed` is final (the journal must be recreated to narrow again). */
export type WatcherState = 'starting' | 'watching' | 'failed' | 'stopped';

/** The paths of a source changed since its last backup, kept in memory by a file watcher. A
 *  restart forgets them, so the first plan after start() is always full. Not persisted, by design. */
export interface ChangeJournal {
  /** Starts watching; resolves when the watcher is ready (initial scan done), or rejects/marks failed. */
  start(): Promise<void>;
  plan(): ScanPlan;
  readonly state: WatcherState;
  /** Why the state is failed, or why the next plan is full. */
  readonly reason: string | undefined;
  close(): Promise<void>;
}

/** Options of createChangeJournal. */
export interface ChangeJournalOptions {
  /** Absolute paths of the source. */
  readonly paths: readonly string[];
  /** The source's excludes, with the backup's rules: excluded trees are not even watched. */
  readonly excludes: readonly string[];
  readonly debounceMs: number;
  /** Called once changes have been quiet for debounceMs (a backup is then due). */
  readonly onSettled: () => void;
  /** A plan is full when the last full scan started longer ago than this; default 24 h. */
  readonly fullScanEveryMs?: number;
  /** Paths journaled before the journal overflows (the next plan is then full); default 100,000. */
  readonly maxPaths?: number;
  /** Injected clock for tests; default Date.now. */
  readonly now?: () => number;
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** A path costs ~150 bytes in the journal and again in a plan's index, so the journal stays
 *  under ~30 MiB; past this many changed paths a full scan (~4 s for 150k unchanged files,
 *  docs/decisions.md §13) is cheap next to what changed. */
const DEFAULT_MAX_PATHS = 100_000;
/** A source that changes without pause (a log folder) is still backed up after this many debounce
 *  periods: the debounce waits for quiet, not forever. */
const MAX_WAIT_DEBOUNCES = 10;
/** The chokidar events that name a changed path. */
const EVENTS = ['add', 'change', 'unlink', 'addDir', 'unlinkDir'] as const;

/** Creates a change journal over `opts.paths`; call start() to begin watching. */
export function createChangeJournal(opts: ChangeJournalOptions): ChangeJournal {
  return new ChokidarChangeJournal(opts);
}

function formatAge(ms: number): string {
  return ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 1000)} s`;
}

/**
 * A ChangeJournal fed by chokidar. Each changed path is journaled with a sequence number; a plan
 * remembers the number it was taken at, so its commit forgets only what it covered. A full scan
 * is due from start, after an overflow, and (by the clock) every fullScanEveryMs; a failed
 * watcher is closed and every plan after it is full.
 */
class ChokidarChangeJournal implements ChangeJournal {
  readonly #opts: ChangeJournalOptions;
  readonly #roots: string[];
  readonly #excluded: Excluder;
  readonly #now: () => number;
  readonly #journal = new Map<string, number>();
  #seq = 0;
  #state: WatcherState = 'stopped';
  #failure: string | undefined;
  /** A full scan is due, demanded at journal sequence `seq`: only a plan taken later clears it. */
  #fullDue: { seq: number; reason: string } | undefined;
  #lastFullMs: number | undefined;
  #base: string | undefined;
  #watcher: FSWatcher | undefined;
  #closed: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #burstStartMs = 0;
  #startWaiter: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(opts: ChangeJournalOptions) {
    this.#opts = opts;
    this.#roots = [...new Set(opts.paths.map((p) => path.resolve(p)))];
    this.#excluded = compileExcludes(opts.excludes);
    this.#now = opts.now ?? Date.now;
  }

  get state(): WatcherState {
    return this.#state;
  }

  get reason(): string | undefined {
    return this.#whyFull();
  }

  start(): Promise<void> {
    if (this.#watcher) return Promise.reject(new CairnError('E_STATE', 'this change journal was started already'));
    this.#state = 'starting';
    this.#demandFull('the watcher started: changes made before it are unknown');
    const startedMs = this.#now();
    const ready = new Promise<void>((resolve, reject) => (this.#startWaiter = { resolve, reject }));
    // atomic: false, or chokidar drops editor swap and backup files (`.x.swp`, `x~`) that a backup
    // keeps; ignorePermissionErrors, or it skips files whose owner has no read bit (root reads them).
    // Only directories are watched (and a source root that is a file): inotify reports changes to
    // the entries of a watched directory through the raw events, and a watch per file cost
    // 150k watches and ~700 MiB for a 150k-file source against 2k watches and +41 MiB for dirs.
    const w = watch(this.#roots, {
      ignoreInitial: true, persistent: true, followSymlinks: false, atomic: false, ignorePermissionErrors: true,
      ignored: (p, st) => this.#excluded(p, st?.isDirectory() ?? false) || (st !== undefined && !st.isDirectory() && !this.#roots.includes(path.resolve(p))),
    });
    this.#watcher = w;
    for (const ev of EVENTS) w.on(ev, (p) => this.#record(path.resolve(p)));
    w.on('raw', (_ev, name, details) => this.#recordRaw(name, details));
    w.on('error', (err) => this.#fail(err));
    w.once('ready', () => {
      if (this.#state !== 'starting') return;
      this.#state = 'watching';
      this.#opts.logger?.info({ paths: this.#roots, ms: this.#now() - startedMs }, 'watching the source for changes');
      this.#startWaiter?.resolve();
      this.#startWaiter = undefined;
    });
    return ready;
  }

  plan(): ScanPlan {
    const why = this.#whyFull();
    const seq = this.#seq;
    const clearsDue = this.#state === 'watching';
    const startedMs = this.#now();
    const changed = why === undefined ? [...this.#journal.keys()] : [];
    // built on first use: a plan handed to the engine worker crosses as `changed` instead
    let covered: PathIndex | undefined;
    let committed = false;
    return {
      full: why !== undefined,
      paths: this.#journal.size,
      changed,
      base: this.#base,
      mayHaveChanged: (dir) => why !== undefined || (covered ??= new PathIndex(changed)).mayHaveChanged(dir),
      commit: (snapshotId) => {
        if (committed) return;
        committed = true;
        this.#base = snapshotId;
        this.#commit(seq, why !== undefined, clearsDue, startedMs);
      },
    };
  }

  async close(): Promise<void> {
    this.#stopTimer();
    this.#state = 'stopped';
    this.#startWaiter?.reject(new CairnError('E_CANCELLED', 'the change journal was closed before its watcher was ready'));
    this.#startWaiter = undefined;
    this.#closed ??= this.#watcher?.close();
    await this.#closed;
  }

  #commit(seq: number, full: boolean, clearsDue: boolean, startedMs: number): void {
    for (const [p, s] of this.#journal) if (s <= seq) this.#journal.delete(p);
    if (!full) return;
    this.#lastFullMs = startedMs;
    // a scan that began before the watcher was ready may have passed a change it never heard of
    if (clearsDue && this.#fullDue && this.#fullDue.seq <= seq) this.#fullDue = undefined;
  }

  #whyFull(): string | undefined {
    if (this.#state === 'failed') return this.#failure;
    if (this.#state === 'starting') return 'the watcher is not ready yet';
    if (this.#state === 'stopped') return 'the watcher is not running';
    if (this.#fullDue) return this.#fullDue.reason;
    if (this.#lastFullMs === undefined) return 'no full scan since the watcher started';
    const ageMs = this.#now() - this.#lastFullMs;
    const everyMs = this.#opts.fullScanEveryMs ?? DAY_MS;
    if (ageMs < 0) return 'the clock went back since the last full scan';
    return ageMs >= everyMs ? `the last full scan started ${formatAge(ageMs)} ago; one is due every ${formatAge(everyMs)}` : undefined;
  }

  #demandFull(reason: string): void {
    this.#fullDue = { seq: ++this.#seq, reason };
  }

  #record(p: string): void {
    if (this.#state === 'stopped' || this.#state === 'failed') return;
    this.#poke();
    const maxPaths = this.#opts.maxPaths ?? DEFAULT_MAX_PATHS;
    if (this.#journal.size >= maxPaths && !this.#journal.has(p)) {
      this.#journal.clear();
      this.#demandFull(`more than ${maxPaths} paths changed since the last backup`);
      this.#opts.logger?.warn({ paths: this.#roots, maxPaths }, 'too many changes to journal: the next backup scans the whole source');
      return;
    }
    this.#journal.set(p, ++this.#seq);
  }

  /** chokidar's internal `raw` event: every fs.watch callback, before its filters. It is what
   *  reports a chmod of a file read since its last write, a new dangling symlink, or a change
   *  to a directory's own metadata, which chokidar's events leave out. A watcher of a directory
   *  names the entry; a watcher of a file names the file itself. */
  #recordRaw(name: string | null | undefined, details: unknown): void {
    const watched = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
    if (typeof watched !== 'string') return;
    // a directory /d holding an entry named d reads as /d itself: coarser, never narrower
    const p = path.resolve(!name || path.basename(watched) === name ? watched : path.join(watched, name));
    const inside = this.#roots.some((r) => p === r || p.startsWith(r === '/' ? r : `${r}/`));
    if (inside && !this.#excluded(p, false)) this.#record(p);
  }

  #fail(err: unknown): void {
    if (this.#state === 'failed' || this.#state === 'stopped') return;
    this.#failure = `watching ${this.#roots.join(', ')} failed: ${err instanceof Error ? err.message : String(err)}`;
    this.#state = 'failed';
    this.#journal.clear();
    this.#stopTimer();
    this.#opts.logger?.warn({ err, paths: this.#roots }, 'change watcher failed: every backup of the source scans it whole');
    this.#startWaiter?.reject(new CairnError('E_IO', this.#failure, { cause: err }));
    this.#startWaiter = undefined;
    // a failed watcher journals nothing reliable: free its watches (ENOSPC is the usual failure)
    this.#closed = this.#watcher?.close().catch(() => undefined);
  }

  /** Restarts the debounce timer; it calls onSettled once changes were quiet for debounceMs, or
   *  at the latest MAX_WAIT_DEBOUNCES debounce periods into a burst that never goes quiet. */
  #poke(): void {
    if (this.#timer) {
      if (this.#now() - this.#burstStartMs < this.#opts.debounceMs * MAX_WAIT_DEBOUNCES) this.#timer.refresh();
      return;
    }
    this.#burstStartMs = this.#now();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.#opts.onSettled();
      } catch (err) {
        this.#opts.logger?.warn({ err, paths: this.#roots }, 'starting a backup after changes failed');
      }
    }, this.#opts.debounceMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
