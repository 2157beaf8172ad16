import type { Clock, TimerHandle } from './clock.js';
import { nextFire, prevFire } from './schedule.js';

/** A source as the scheduler sees it. */
export interface ScheduledSource {
  readonly name: string;
  readonly schedule: readonly string[];
}

/** Options of a Scheduler. */
export interface SchedulerOptions {
  readonly clock: Clock;
  /** When the source's newest backup job was created (ms), or undefined if it never had one. */
  readonly lastRunMs: (source: string) => number | undefined;
  /** A backup of the source is due now. */
  readonly onDue: (source: string, why: 'schedule' | 'overdue' | 'start') => void;
  readonly timezone?: string;
}

/** The longest a timer waits before the next fire time is computed again: timers cannot wait
 *  more than ~24.8 days, and a wall clock that jumps (NTP, suspend, DST) is noticed this soon. */
const MAX_WAIT_MS = 60 * 60 * 1000;

/**
 * Fires backups on cron schedules. At start, a source that never had a backup, or whose last
 * fire time passed after its newest backup job (the agent was down through it), is due at once.
 * Then one timer waits for the earliest next fire time among all sources. Times come from the
 * injected clock, so tests move time instead of waiting for it.
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  #sources: readonly ScheduledSource[] = [];
  #next = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
  }

  /** Starts with these sources; those due since their last run are reported at once. */
  start(sources: readonly ScheduledSource[]): void {
    this.update(sources);
  }

  /** Sets the sources (at start, or on a config reload). A source new to the scheduler is due at
   *  once when it never had a backup or a fire time passed after its newest backup job; every
   *  source's next fire time is computed from now. */
  update(sources: readonly ScheduledSource[]): void {
    const now = this.#o.clock.now();
    for (const s of sources) {
      if (this.#next.has(s.name)) continue;
      const last = this.#o.lastRunMs(s.name);
      if (last === undefined) this.#o.onDue(s.name, 'start');
      else if ((prevFire(s.schedule, now, this.#o.timezone) ?? -Infinity) > last) this.#o.onDue(s.name, 'overdue');
    }
    this.#sources = sources;
    this.#next = new Map(sources.map((s) => [s.name, nextFire(s.schedule, now, this.#o.timezone) ?? Infinity]));
    this.#arm();
  }

  /** When the source runs next on its schedule (ms), if it is scheduled. */
  nextRunMs(source: string): number | undefined {
    const t = this.#next.get(source);
    return t === undefined || t === Infinity ? undefined : t;
  }

  /** Stops: no more fire times are reported. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopped || this.#next.size === 0) return;
    const soonest = Math.min(...this.#next.values());
    if (soonest === Infinity) return;
    const wait = Math.max(0, Math.min(soonest - this.#o.clock.now(), MAX_WAIT_MS));
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), wait);
  }

  #tick(): void {
    this.#timer = undefined;
    const now = this.#o.clock.now();
    for (const s of this.#sources) {
      const at = this.#next.get(s.name) ?? Infinity;
      const fresh = nextFire(s.schedule, now, this.#o.timezone) ?? Infinity;
      if (at > now) {
        // a wall clock stepped back (NTP after a boot with the clock ahead) leaves a next fire
        // time far in the future: take the one that follows now instead
        if (at > fresh) this.#next.set(s.name, fresh);
        continue;
      }
      this.#next.set(s.name, fresh);
      this.#o.onDue(s.name, 'schedule');
    }
    this.#arm();
  }
}
