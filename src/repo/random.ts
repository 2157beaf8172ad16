import { randomBytes } from 'node:crypto';
import type { RandomBytes } from '../core/ids.js';

/** A CSPRNG source that draws 64 KiB at a time from the OS: every blob takes a 12-byte nonce,
 *  and one randomBytes call per nonce cost ~8 µs (2.6% of a backup's main thread). */
export function bufferedRandom(poolBytes = 64 * 1024): RandomBytes {
  let pool = randomBytes(poolBytes);
  let at = 0;
  return (n) => {
    if (n > poolBytes / 4) return randomBytes(n);
    if (at + n > pool.length) {
      pool = randomBytes(poolBytes);
      at = 0;
    }
    const out = Uint8Array.prototype.slice.call(pool, at, at + n);
    at += n;
    return out;
  };
}
