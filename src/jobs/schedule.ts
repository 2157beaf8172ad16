import { CronExpressionParser } from 'cron-parser';

/** Why an expression is not a schedule, or undefined when it is one: 5 fields (minute hour
 *  day-of-month month day-of-week) or 6 (with seconds first), as crontab reads them. */
export function cronProblem(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `has ${fields} field${fields === 1 ? '' : 's'}`;
  try {
    CronExpressionParser.parse(expr);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The first time strictly after `afterMs` that any of the expressions fires. */
export function nextFire(exprs: readonly string[], afterMs: number, tz?: string): number | undefined {
  let best: number | undefined;
  for (const e of exprs) {
    const t = CronExpressionParser.parse(e, { currentDate: new Date(afterMs), ...(tz ? { tz } : {}) }).next().getTime();
    if (best === undefined || t < best) best = t;
  }
  return best;
}

/** The last time at or before `atMs` that any of the expressions fired. */
export function prevFire(exprs: readonly string[], atMs: number, tz?: string): number | undefined {
  let best: number | undefined;
  for (const e of exprs) {
    // prev() is strictly before its start, so start just after atMs to include atMs itself
    const t = CronExpressionParser.parse(e, { currentDate: new Date(atMs + 1), ...(tz ? { tz } : {}) }).prev().getTime();
    if (best === undefined || t > best) best = t;
  }
  return best;
}

/** The two most recent fire times of a schedule at some instant. */
export interface RecentFires {
  readonly latest: number | undefined;
  readonly before: number | undefined;
}

/**
 * Remembers each schedule's two most recent fire times until the next fire time passes (or the
 * clock goes back past the latest): cron-parser walks back minute by minute, ~1 ms for a daily
 * schedule and ~5 ms for a yearly one, and /health and /v1/summary ask for every source on every
 * request (native-bench/RESULTS.md, the polling benchmark).
 */
export class RecentFiresCache {
  readonly #cache = new Map<string, RecentFires & { readonly validFrom: number; readonly validUntil: number }>();
  readonly #tz: string | undefined;

  constructor(timezone?: string) {
    this.#tz = timezone;
  }

  /** The schedule's latest fire time at or before nowMs, and the one before it. */
  get(schedule: readonly string[], nowMs: number): RecentFires {
    const key = schedule.join('\n');
    const hit = this.#cache.get(key);
    if (hit && nowMs >= hit.validFrom && nowMs < hit.validUntil) return hit;
    const latest = prevFire(schedule, nowMs, this.#tz);
    const before = latest === undefined ? undefined : prevFire(schedule, latest - 1, this.#tz);
    const entry = { latest, before, validFrom: latest ?? -Infinity, validUntil: nextFire(schedule, nowMs, this.#tz) ?? Infinity };
    this.#cache.set(key, entry);
    return entry;
  }
}
