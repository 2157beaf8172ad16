import type { Logger } from 'pino';
import { type ChangeJournal, createChangeJournal } from '../jobs/change-journal.js';
import type { SourceSpec } from '../jobs/runners.js';

/** A change-triggered backup waits this long after the last change unless the source says. */
export const DEFAULT_DEBOUNCE_SECONDS = 60;

/** What of a source its watcher depends on: a change to anything else keeps the journal. */
const watchKey = (s: SourceSpec): string => JSON.stringify([s.paths, s.excludes ?? [], s.oneFileSystem ?? false, s.watch?.debounceSeconds ?? DEFAULT_DEBOUNCE_SECONDS]);

/** The change journals of the watched sources, kept in step with the config. */
export class SourceJournals {
  readonly #journals = new Map<string, { journal: ChangeJournal; key: string }>();
  readonly #log: Logger;
  readonly #onSettled: (source: string) => void;
  #closed = false;

  constructor(log: Logger, onSettled: (source: string) => void) {
    this.#log = log;
    this.#onSettled = onSettled;
  }

  /** The journal of a source, if it is watched. */
  get(source: string): ChangeJournal | undefined {
    return this.#journals.get(source)?.journal;
  }

  /** Starts journals for newly watched sources, and closes those of sources no longer watched
   *  or whose paths, excludes or debounce changed (their next backup is then a full scan). */
  async sync(sources: Iterable<SourceSpec>): Promise<void> {
    if (this.#closed) return;
    const wanted = new Map([...sources].filter((s) => s.watch?.enabled === true).map((s) => [s.name, s]));
    for (const [name, j] of this.#journals) {
      const s = wanted.get(name);
      if (s && watchKey(s) === j.key) continue;
      this.#journals.delete(name);
      await j.journal.close();
    }
    for (const s of wanted.values()) {
      if (this.#journals.has(s.name)) continue;
      const journal = createChangeJournal({
        paths: s.paths,
        excludes: s.excludes ?? [],
        debounceMs: (s.watch?.debounceSeconds ?? DEFAULT_DEBOUNCE_SECONDS) * 1000,
        onSettled: () => this.#onSettled(s.name),
        logger: this.#log.child({ source: s.name, component: 'watcher' }),
      });
      this.#journals.set(s.name, { journal, key: watchKey(s) });
      journal.start().catch((err: unknown) => this.#log.warn({ err, source: s.name }, 'change watcher failed; backups of this source scan everything'));
    }
  }

  /** Closes every journal; sync() does nothing afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#journals.values()].map((j) => j.journal.close()));
    this.#journals.clear();
  }
}
