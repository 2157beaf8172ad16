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
