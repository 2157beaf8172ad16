import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/jobs/scheduler.js';
import { cronProblem, nextFire, prevFire } from '../../src/jobs/schedule.js';
import { FakeClock } from './fake-clock.js';

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

function setup(start: string, lastRuns: Record<string, string> = {}) {
  const clock = new FakeClock(start);
  const due: string[] = [];
  const s = new Scheduler({ clock, timezone: 'UTC', lastRunMs: (src) => (lastRuns[src] ? Date.parse(lastRuns[src]) : undefined), onDue: (src, why) => due.push(`${iso(clock.now())} ${src} ${why}`) });
  return { clock, due, s };
}

describe('schedule expressions', () => {
  it('finds next and previous fire times across several expressions', () => {
    const t = Date.parse('2026-11-23T10:30:00Z');
    expect(iso(nextFire(['0 */6 * * *', '15 11 * * *'], t, 'UTC'))).toBe('2026-11-23T11:15:00.000Z');
    expect(iso(prevFire(['0 */6 * * *', '15 11 * * *'], t, 'UTC'))).toBe('2026-11-23T06:00:00.000Z');
    expect(iso(prevFire(['0 */6 * * *'], Date.parse('2026-11-23T12:00:00Z'), 'UTC'))).toBe('2026-11-23T12:00:00.000Z');
    expect(iso(nextFire(['*/10 * * * * *'], t, 'UTC'))).toBe('2026-11-23T10:30:10.000Z');
  });

  it.each([['0 */6 * * *', undefined], ['*/10 * * * * *', undefined], ['61 * * * *', /0-59/], ['* * *', /3 fields/], ['every day', /2 fields/]])('cronProblem(%s)', (expr, problem) => {
    const p = cronProblem(expr);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });
});

describe('Scheduler (injected clock)', () => {
  it('runs a never-backed-up source at start, then on each fire time', () => {
    const { clock, due, s } = setup('2026-11-23T10:30:00Z');
    s.start([{ name: 'web', schedule: ['0 */6 * * *'] }]);
    expect(due).toEqual(['2026-11-23T10:30:00.000Z web start']);
    expect(iso(s.nextRunMs('web'))).toBe('2026-11-23T12:00:00.000Z');
    clock.advanceTo('2026-11-24T00:30:00Z');
    expect(due.slice(1)).toEqual(['2026-11-23T12:00:00.000Z web schedule', '2026-11-23T18:00:00.000Z web schedule', '2026-11-24T00:00:00.000Z web schedule']);
  });

  it('runs at launch a source whose fire time passed while the agent was down, and not one that is on time', () => {
    const { due, s } = setup('2026-11-23T13:00:00Z', { late: '2026-11-23T07:00:00Z', fresh: '2026-11-23T12:00:05Z' });
    s.start([
      { name: 'late', schedule: ['0 */6 * * *'] },
      { name: 'fresh', schedule: ['0 */6 * * *'] },
    ]);
    expect(due).toEqual(['2026-11-23T13:00:00.000Z late overdue']);
  });

  it('fires several sources on their own schedules, several times a day', () => {
    const { clock, due, s } = setup('2026-11-23T00:00:30Z', { a: '2026-11-23T00:00:00Z', b: '2026-11-23T00:00:00Z' });
    s.start([
      { name: 'a', schedule: ['0 8 * * *', '0 20 * * *'] },
      { name: 'b', schedule: ['30 */8 * * *'] },
    ]);
    clock.advanceTo('2026-11-24T00:00:00Z');
    expect(due).toEqual([
      '2026-11-23T00:30:00.000Z b schedule',
      '2026-11-23T08:00:00.000Z a schedule',
      '2026-11-23T08:30:00.000Z b schedule',
      '2026-11-23T16:30:00.000Z b schedule',
      '2026-11-23T20:00:00.000Z a schedule',
    ]);
  });

  it('waits at most an hour per timer, so a schedule months away still fires on time', () => {
    const { clock, due, s } = setup('2026-11-23T00:00:00Z', { y: '2026-11-22T00:00:00Z' });
    s.start([{ name: 'y', schedule: ['0 0 1 1 *'] }]);
    clock.advanceTo('2027-01-01T00:00:01Z');
    expect(due).toEqual(['2027-01-01T00:00:00.000Z y schedule']);
  });

  it('keeps firing after the wall clock steps back (a boot with the clock a year ahead, then NTP)', () => {
    const { clock, due, s } = setup('2027-11-23T10:30:00Z', { web: '2027-11-23T10:00:00Z' });
    s.start([{ name: 'web', schedule: ['0 * * * *'] }]);
    clock.jump(Date.parse('2026-11-23T10:30:00Z') - Date.parse('2027-11-23T10:30:00Z'));
    clock.advanceTo('2026-11-23T13:30:00Z');
    // the first timer (armed for 11:00 of the year ahead) fires at 11:00 and finds the step
    expect(due).toEqual(['2026-11-23T12:00:00.000Z web schedule', '2026-11-23T13:00:00.000Z web schedule']);
  });

  it('follows a time zone across a daylight-saving change', () => {
    const clock = new FakeClock('2026-03-28T12:00:00Z');
    const due: string[] = [];
    const s = new Scheduler({ clock, timezone: 'Europe/Paris', lastRunMs: () => Date.parse('2026-03-28T12:00:00Z'), onDue: () => due.push(new Date(clock.now()).toISOString()) });
    s.start([{ name: 'x', schedule: ['0 2 * * *', '0 9 * * *'] }]);
    clock.advanceTo('2026-03-30T00:00:00Z');
    // 09:00 in Paris is 08:00Z before the change (CET) and 07:00Z after it (CEST); 02:00 does not
    // exist on 29 March (clocks go from 02:00 to 03:00)
    expect(due.filter((d) => d.endsWith('T08:00:00.000Z') || d.endsWith('T07:00:00.000Z'))).toEqual(['2026-03-29T07:00:00.000Z']);
    expect(due).toContain('2026-03-29T01:00:00.000Z');
  });

  it('update() replaces sources (a reload): a new one never backed up runs at once; stop() ends all timers', () => {
    const { clock, due, s } = setup('2026-11-23T00:00:00Z', { a: '2026-11-23T00:00:00Z', b: '2026-11-23T00:00:00Z' });
    s.start([{ name: 'a', schedule: ['0 * * * *'] }]);
    s.update([{ name: 'b', schedule: ['30 * * * *'] }, { name: 'c', schedule: ['0 0 1 1 *'] }]);
    expect(s.nextRunMs('a')).toBeUndefined();
    expect(due).toEqual(['2026-11-23T00:00:00.000Z c start']);
    due.length = 0;
    clock.advanceTo('2026-11-23T01:00:00Z');
    expect(due).toEqual(['2026-11-23T00:30:00.000Z b schedule']);
    s.stop();
    expect(clock.pending).toBe(0);
    clock.advanceTo('2026-11-23T05:00:00Z');
    expect(due).toHaveLength(1);
  });
});
