import type { Clock, TimerHandle } from '../../src/jobs/clock.js';

/** A clock that moves only when told: timers fire, in time order, as advance() passes them. */
export class FakeClock implements Clock {
  #now: number;
  #timers = new Map<object, { at: number; fn: () => void }>();

  constructor(start: string | number) {
    this.#now = typeof start === 'string' ? Date.parse(start) : start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h = {};
    this.#timers.set(h, { at: this.#now + Math.max(0, ms), fn });
    return h;
  }

  clearTimeout(h: TimerHandle): void {
    this.#timers.delete(h);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by ms, firing every timer due on the way at its own time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [object, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = end;
  }

  /** Steps the wall clock by ms (negative: back) without firing anything: timers keep their
   *  remaining time, as Node's timers do (they run on a monotonic clock). */
  jump(ms: number): void {
    this.#now += ms;
    for (const t of this.#timers.values()) t.at += ms;
  }

  /** Moves time to an ISO instant. */
  advanceTo(iso: string): void {
    this.advance(Date.parse(iso) - this.#now);
  }
}
