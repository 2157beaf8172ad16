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
 *  call fails, no new call starts; the
 *  first failure is rethrown once the calls in flight have settled. */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void> | void): Promise<void> {
  if (!(limit >= 1)) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        // a call that finished without a promise costs no await
        const pending = fn(items[i]!, i);
        if (pending !== undefined) await pending;
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  const lanes: Promise<void>[] = [];
  for (let k = 0; k < Math.min(limit, items.length); k++) lanes.push(lane());
  await Promise.all(lanes);
  if (failure) throw failure.err;
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
