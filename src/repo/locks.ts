import { LockedError } from '../core/errors.js';
import { type RandomBytes, randomId } from '../core/ids.js';
import type { BlobInfo, BlobStore, Op } from './blob-store.js';
import type { Repository } from './repository.js';

/** A lock file (locks/<random id>, plain JSON: it holds no secret). */
export interface LockRecord {
  readonly exclusive: boolean;
  readonly host: string;
  readonly pid: number;
  readonly username: string;
  readonly time: string;
  readonly purpose: string;
}

/** Who is taking a lock, and how to judge others' locks. */
export interface LockOptions extends Op {
  readonly exclusive: boolean;
  readonly purpose: string;
  readonly host: string;
  readonly pid: number;
  readonly username: string;
  readonly now: () => Date;
  readonly random: RandomBytes;
  /** Whether a process of this host is alive; a lock of this host whose process is gone is stale. */
  readonly isAlive: (pid: number) => boolean;
  /** A lock not refreshed for this long is stale (a crashed process on another host). */
  readonly staleAfterMs?: number;
  /** How often a held lock is refreshed; must be well under staleAfterMs. */
  readonly refreshMs?: number;
}

/** restic's figures: refresh every 5 minutes, stale after 30, so 5 missed refreshes are tolerated. */
const STALE_AFTER_MS = 30 * 60_000;
const REFRESH_MS = 5 * 60_000;

/** A held lock; release() removes it and stops its refresh. */
export interface HeldLock {
  readonly name: string;
  /** Aborts when the lock could not be refreshed for half the stale time: before anyone may
   *  judge it stale and take the repository, the work it guards must stop. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

/** Takes a shared or exclusive lock. Shared locks (backup) coexist; an exclusive one (prune)
 *  excludes all others. Writes its own lock first, then looks for conflicting live locks, so
 *  of two racing writers at least one sees the other. Stale locks found on the way are removed.
 *  Rejects with LockedError naming the holder. */
export async function acquireLock(store: Pick<BlobStore, 'put' | 'get' | 'list' | 'delete'>, o: LockOptions): Promise<HeldLock> {
  const name = randomId<string>(o.random);
  const record = (): Buffer => Buffer.from(JSON.stringify({ exclusive: o.exclusive, host: o.host, pid: o.pid, username: o.username, time: o.now().toISOString(), purpose: o.purpose } satisfies LockRecord));
  const ref = { kind: 'locks' as const, name };
  await store.put(ref, record(), { signal: o.signal, ifNoneMatch: true });
  try {
    for await (const info of store.list('locks', o)) {
      if (info.ref.name === name) continue;
      const other = await readLock(store, info, o);
      if (!other) continue;
      if (isStale(other, info, o)) {
        await store.delete(info.ref, o);
        continue;
      }
      if (o.exclusive || other.exclusive) {
        throw new LockedError(`repository is locked ${other.exclusive ? 'exclusively ' : ''}by ${other.purpose} (pid ${other.pid} on ${other.host}, user ${other.username}, since ${other.time})`, {
          hint: 'wait for it to finish; if that process is gone for good, run cairn unlock',
        });
      }
    }
  } catch (err) {
    await store.delete(ref).catch(() => undefined);
    throw err;
  }
  let refreshing: Promise<unknown> = Promise.resolve();
  let released = false;
  let lastRefreshMs = o.now().getTime();
  const lost = new AbortController();
  const staleAfterMs = o.staleAfterMs ?? STALE_AFTER_MS;
  const timer = setInterval(() => {
    if (released) return;
    refreshing = store.put(ref, record()).then(
      () => {
        lastRefreshMs = o.now().getTime();
      },
      (err: unknown) => {
        if (o.now().getTime() - lastRefreshMs > staleAfterMs / 2 && !lost.signal.aborted) {
          lost.abort(new LockedError(`lost the repository lock: it could not be refreshed for ${Math.round((o.now().getTime() - lastRefreshMs) / 60_000)} min (${(err as Error).message})`, { hint: 'check the connection to the repository and run the operation again' }));
        }
      },
    );
  }, o.refreshMs ?? REFRESH_MS);
  timer.unref();
  return {
    name,
    signal: lost.signal,
    async release() {
      released = true;
      clearInterval(timer);
      await store.delete(ref);
      // a refresh already in flight may land after the delete and bring the lock back: delete
      // again once it settles, without making release wait on a store that may hang
      void refreshing.then(() => store.delete(ref)).catch(() => undefined);
    },
  };
}

/** Removes stale locks (or every lock with `all`), returning how many went. */
export async function removeLocks(store: Pick<BlobStore, 'get' | 'list' | 'delete'>, o: Pick<LockOptions, 'host' | 'now' | 'isAlive' | 'staleAfterMs' | 'signal'> & { all: boolean }): Promise<number> {
  let n = 0;
  for await (const info of store.list('locks', o)) {
    const rec = await readLock(store, info, o);
    if (o.all || !rec || isStale(rec, info, o)) {
      await store.delete(info.ref, o);
      n++;
    }
  }
  return n;
}

async function readLock(store: Pick<BlobStore, 'get'>, info: BlobInfo, o: Op): Promise<LockRecord | undefined> {
  try {
    return JSON.parse(Buffer.from(await store.get(info.ref, undefined, o)).toString('utf8')) as LockRecord;
  } catch {
    return undefined; // vanished (released) or unreadable: neither blocks anyone
  }
}

function isStale(rec: LockRecord, info: BlobInfo, o: Pick<LockOptions, 'host' | 'now' | 'isAlive' | 'staleAfterMs'>): boolean {
  if (rec.host === o.host && !o.isAlive(rec.pid)) return true;
  return o.now().getTime() - info.modifiedMs > (o.staleAfterMs ?? STALE_AFTER_MS);
}

/** Takes a lock on the repository for `purpose`. */
export function lockRepo(repo: Pick<Repository, 'store' | 'env'>, purpose: string, exclusive: boolean, signal?: AbortSignal): Promise<HeldLock> {
  return acquireLock(repo.store, {
    exclusive,
    purpose,
    host: repo.env.host,
    pid: repo.env.pid,
    username: repo.env.username,
    now: repo.env.now,
    random: repo.env.random,
    isAlive: repo.env.isAlive,
    signal,
  });
}

/** Runs `fn` holding a lock, releasing it afterwards whatever happens. `fn` gets a signal that
 *  aborts with the caller's, and when the lock can no longer be kept fresh. */
export async function withLock<R>(repo: Pick<Repository, 'store' | 'env'>, purpose: string, exclusive: boolean, fn: (signal: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R> {
  const lock = await lockRepo(repo, purpose, exclusive, signal);
  try {
    return await fn(signal ? AbortSignal.any([signal, lock.signal]) : lock.signal);
  } finally {
    await lock.release().catch(() => undefined);
  }
}
