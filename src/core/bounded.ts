/** Maps `items` through `fn` with at most `limit` calls in flight, yielding results in input
 *  order. The first rejection stops new calls and is rethrown after the in-flight ones settle. */
export async function mapBounded<T, R>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for await (const r of mapBoundedIter(items, limit, fn)) out.push(r);
  return out;
}

/** Streaming mapBounded: results come out in input order as soon as each is ready, with at most
 *  `limit` calls in flight (and so at most `limit` results buffered). After any call fails, no
 *  new call starts. */
export async function* mapBoundedIter<T, R>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T, index: number) => Promise<R>): AsyncGenerator<R> {
  if (!(limit >= 1)) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
  const inFlight: Promise<R>[] = [];
  let index = 0;
  let failure: { err: unknown } | undefined;
  try {
    for await (const item of items) {
      if (failure) throw failure.err;
      const p = fn(item, index++);
      p.catch((err: unknown) => {
        failure ??= { err };
      });
      inFlight.push(p);
      if (inFlight.length >= limit) yield await inFlight.shift()!;
    }
    while (inFlight.length > 0) yield await inFlight.shift()!;
  } finally {
    await Promise.allSettled(inFlight);
  }
}

/** Calls `fn` on every item with at most `limit` calls in flight, starting them in input order
 *  without waiting on the oldest (unlike mapBounded, which keeps results in order), and keeping
 *  no results: per item, one call's promise, or none when `fn` returns without one. After any
 *  call fails, no new call starts; the first failure is rethrown once the calls in flight have
 *  settled. `ctx` is passed to each call: a caller that calls this often (a backup, per
 *  directory) passes one function and a context, not a closure made per call, which V8
 *  compiled again for each (with what it inlined) once it got hot. */
export async function forEachBounded<T, C = undefined>(items: readonly T[], limit: number, fn: (item: T, index: number, ctx: C) => Promise<void> | void, ctx?: C): Promise<void> {
  if (!(limit >= 1)) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
  const run = new Lanes(items, fn, ctx as C);
  const lanes: Promise<void>[] = [];
  for (let k = 0; k < Math.min(limit, items.length); k++) lanes.push(run.lane());
  await Promise.all(lanes);
  if (run.failure) throw run.failure.err;
}

/** The lanes of one forEachBounded call: a class, so its loop is one function V8 compiles once,
 *  not a closure per call. */
class Lanes<T, C> {
  next = 0;
  failure: { err: unknown } | undefined = undefined;
  readonly #items: readonly T[];
  readonly #fn: (item: T, index: number, ctx: C) => Promise<void> | void;
  readonly #ctx: C;

  constructor(items: readonly T[], fn: (item: T, index: number, ctx: C) => Promise<void> | void, ctx: C) {
    this.#items = items;
    this.#fn = fn;
    this.#ctx = ctx;
  }

  async lane(): Promise<void> {
    const items = this.#items;
    while (this.failure === undefined && this.next < items.length) {
      const i = this.next++;
      try {
        // a call that finished without a promise costs no await
        const pending = this.#fn(items[i]!, i, this.#ctx);
        if (pending !== undefined) await pending;
      } catch (err) {
        this.failure ??= { err };
      }
    }
  }
}

/** A counting semaphore for bounding concurrent work that is not a simple map. */
export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  /** Waits for a permit. */
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Returns a permit. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }

  /** Runs `fn` holding a permit. */
  async with<R>(fn: () => Promise<R>): Promise<R> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
