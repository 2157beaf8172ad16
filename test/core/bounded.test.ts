import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Semaphore, forEachBounded, mapBounded, mapBoundedIter } from '../../src/core/bounded.js';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued microtask run (one turn of the event loop); not a timed wait. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fn for mapBounded whose calls are settled by the test, recording what was started. */
function controlled(): { fn: (item: number, index: number) => Promise<string>; started: { item: number; index: number; d: Deferred<string> }[] } {
  const started: { item: number; index: number; d: Deferred<string> }[] = [];
  return {
    started,
    fn: (item, index) => {
      const d = deferred<string>();
      started.push({ item, index, d });
      return d.promise;
    },
  };
}

/** Tracks whether a promise has settled, without handling its rejection for the caller. */
function track<T>(p: Promise<T>): { settled: () => boolean; result: Promise<T> } {
  let done = false;
  const result = p.finally(() => {
    done = true;
  });
  result.catch(() => undefined);
  return { settled: () => done, result };
}

describe('mapBounded', () => {
  it('returns results in input order, whatever order the calls finish in, with ≤ limit in flight (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: 20 }), { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), async (delays, limit) => {
        let inFlight = 0;
        let maxInFlight = 0;
        const out = await mapBounded(delays, limit, async (delay, i) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          for (let k = 0; k < delay; k++) await Promise.resolve();
          inFlight--;
          return `${i}:${delay}`;
        });
        expect(out).toEqual(delays.map((d, i) => `${i}:${d}`));
        expect(maxInFlight).toBeLessThanOrEqual(limit);
      }),
    );
  });

  it('starts exactly `limit` calls, and a new one only when the oldest has finished', async () => {
    const { fn, started } = controlled();
    const run = track(mapBounded([10, 11, 12, 13, 14], 2, fn));
    await settle();
    expect(started.map((s) => s.item)).toEqual([10, 11]);
    started[1]!.d.resolve('b');
    await settle();
    expect(started).toHaveLength(2);
    started[0]!.d.resolve('a');
    await settle();
    expect(started.map((s) => s.index)).toEqual([0, 1, 2, 3]);
    for (const s of started.slice(2)) s.d.resolve(String(s.item));
    await settle();
    started[4]!.d.resolve('e');
    expect(await run.result).toEqual(['a', 'b', '12', '13', 'e']);
  });

  it('propagates the error of a failing call and calls fn for fewer than all items', async () => {
    let calls = 0;
    const items = Array.from({ length: 100 }, (_, i) => i);
    const err = await mapBounded(items, 4, async (i) => {
      calls++;
      await Promise.resolve();
      if (i === 10) throw new RangeError(`item ${i}`);
      return i;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe('item 10');
    expect(calls).toBeLessThanOrEqual(10 + 4);
  });

  it('takes an async iterable and passes each item’s index', async () => {
    async function* gen(): AsyncGenerator<string> {
      yield 'a';
      yield 'b';
      yield 'c';
    }
    expect(await mapBounded(gen(), 2, async (s, i) => `${i}${s}`)).toEqual(['0a', '1b', '2c']);
  });

  it('returns an empty array for no items without calling fn', async () => {
    let calls = 0;
    expect(await mapBounded([], 3, async () => ++calls)).toEqual([]);
    expect(calls).toBe(0);
  });

  it.each([0, -1, Number.NaN, 0.5])('rejects a limit of %s with RangeError', async (limit) => {
    await expect(mapBounded([1], limit, async (x) => x)).rejects.toBeInstanceOf(RangeError);
  });
});

describe('mapBoundedIter', () => {
  it('yields the first result as soon as it is ready, while later calls are still running', async () => {
    const { fn, started } = controlled();
    const it = mapBoundedIter([0, 1, 2, 3], 3, fn);
    const first = track(it.next());
    await settle();
    expect(started).toHaveLength(3);
    expect(first.settled()).toBe(false);
    started[0]!.d.resolve('zero');
    expect(await first.result).toEqual({ value: 'zero', done: false });
    for (const s of started.slice(1)) s.d.resolve(`r${s.item}`);
    const rest: string[] = [];
    const second = it.next();
    await settle();
    started[3]!.d.resolve('r3');
    for (let r = await second; !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual(['r1', 'r2', 'r3']);
  });

  it('waits for the calls in flight when the consumer stops early', async () => {
    const { fn, started } = controlled();
    const it = mapBoundedIter([0, 1, 2, 3], 2, fn);
    const first = it.next();
    await settle();
    started[0]!.d.resolve('a');
    await first;
    const ret = track(it.return(undefined));
    await settle();
    expect(ret.settled()).toBe(false);
    started[1]!.d.resolve('b');
    await ret.result;
    expect(started.length).toBeLessThanOrEqual(3);
  });
});

describe('forEachBounded', () => {
  it('starts `limit` calls in input order, and the next as soon as any one finishes', async () => {
    const { fn, started } = controlled();
    const run = track(forEachBounded([10, 11, 12, 13], 2, async (item, index) => void (await fn(item, index))));
    await settle();
    expect(started.map((s) => s.item)).toEqual([10, 11]);
    // the second finishing first frees a lane at once (no wait on the oldest, as mapBounded has)
    started[1]!.d.resolve('b');
    await settle();
    expect(started.map((s) => s.index)).toEqual([0, 1, 2]);
    for (const s of started) s.d.resolve('');
    await settle();
    for (const s of started) s.d.resolve('');
    await expect(run.result).resolves.toBeUndefined();
    expect(started.map((s) => s.item)).toEqual([10, 11, 12, 13]);
  });

  it('never runs more than `limit` calls at once and calls fn once per item (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(5), { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), async (delays, limit) => {
        let running = 0;
        let peak = 0;
        const seen: number[] = [];
        await forEachBounded(delays, limit, async (d, i) => {
          running++;
          peak = Math.max(peak, running);
          for (let k = 0; k < d; k++) await Promise.resolve();
          seen.push(i);
          running--;
        });
        expect(peak).toBeLessThanOrEqual(limit);
        expect(seen.sort((a, b) => a - b)).toEqual(delays.map((_, i) => i));
      }),
    );
  });

  it('passes its context to every call', async () => {
    const ctx = { seen: [] as number[] };
    await forEachBounded([1, 2, 3], 2, (item, index, c) => void c.seen.push(item * 10 + index), ctx);
    expect(ctx.seen.sort()).toEqual([10, 21, 32]);
  });

  it('does nothing for no items, and refuses a limit below 1', async () => {
    await expect(forEachBounded([], 3, () => Promise.reject(new Error('called')))).resolves.toBeUndefined();
    await expect(forEachBounded([1], 0, async () => undefined)).rejects.toThrow(RangeError);
  });

  it('takes calls that finish without a promise, mixed with ones that return one', async () => {
    const seen: number[] = [];
    await forEachBounded([1, 2, 3, 4, 5, 6], 2, (item) => {
      if (item % 2 === 1) {
        seen.push(item);
        return;
      }
      return Promise.resolve().then(() => void seen.push(item));
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6]);
    // a synchronous throw fails the run like a rejection, after the calls in flight
    const started: number[] = [];
    await expect(
      forEachBounded([1, 2, 3, 4], 1, (item) => {
        started.push(item);
        if (item === 2) throw new Error('sync failure');
      }),
    ).rejects.toThrow('sync failure');
    expect(started).toEqual([1, 2]);
  });
});

describe.each([
  ['mapBounded', (items: number[], fn: ReturnType<typeof controlled>['fn']): Promise<unknown> => mapBounded(items, 2, fn)],
  ['forEachBounded', (items: number[], fn: ReturnType<typeof controlled>['fn']): Promise<unknown> => forEachBounded(items, 2, async (item, index) => void (await fn(item, index)))],
] as const)('%s with a limit of 2', (_name, run2) => {
  it('rethrows the first rejection only after the calls in flight settle, and starts no more', async () => {
    const { fn, started } = controlled();
    const run = track(run2([0, 1, 2, 3, 4, 5], fn));
    await settle();
    const boom = new Error('boom');
    started[0]!.d.reject(boom);
    await settle();
    expect(run.settled()).toBe(false);
    started[1]!.d.resolve('late');
    await expect(run.result).rejects.toBe(boom);
    expect(started).toHaveLength(2);
  });
});

describe('Semaphore', () => {
  it('hands out `permits` permits at once and queues the rest in FIFO order', async () => {
    const sem = new Semaphore(2);
    await sem.acquire();
    await sem.acquire();
    const order: string[] = [];
    const a = sem.acquire().then(() => order.push('a'));
    const b = sem.acquire().then(() => order.push('b'));
    await settle();
    expect(order).toEqual([]);
    sem.release();
    await a;
    await settle();
    expect(order).toEqual(['a']);
    sem.release();
    await b;
    expect(order).toEqual(['a', 'b']);
  });

  it('never lets more than `permits` holders run at once (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: 10 }), { maxLength: 30 }), fc.integer({ min: 1, max: 5 }), async (delays, permits) => {
        const sem = new Semaphore(permits);
        let holders = 0;
        let max = 0;
        await Promise.all(
          delays.map((delay) =>
            sem.with(async () => {
              holders++;
              max = Math.max(max, holders);
              for (let k = 0; k < delay; k++) await Promise.resolve();
              holders--;
            }),
          ),
        );
        expect(max).toBeLessThanOrEqual(permits);
        expect(holders).toBe(0);
      }),
    );
  });

  it('returns the permit when the work in with() throws', async () => {
    const sem = new Semaphore(1);
    await expect(sem.with(async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    const got = track(sem.acquire());
    await settle();
    expect(got.settled()).toBe(true);
  });

  it('returns what the work in with() returns', async () => {
    expect(await new Semaphore(1).with(async () => 42)).toBe(42);
  });
});
