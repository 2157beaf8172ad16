// Minor GCs on a worker thread by bytes handled, for workers whose garbage is mostly buffers
// that node:crypto allocates (it has no cipher that writes into the caller's buffer).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Returns a counter that runs a minor GC of this thread after every `every` bytes counted. V8
 * frees dead buffers only at a GC, which it starts on their account only past ~64 MiB of them:
 * the seal worker's dead ciphertexts were ~30 MiB of a backup's peak RSS (docs/decisions.md
 * §28). A scavenge of a worker's few-MiB young generation takes well under a millisecond.
 */
export function minorGcEvery(every: number): (bytes: number) => void {
  // --expose-gc gives new contexts a gc(); this thread's own context was made before the flag
  setFlagsFromString('--expose-gc');
  const minorGc = runInNewContext('gc') as (opts: { type: 'minor' }) => void;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    minorGc({ type: 'minor' });
  };
}
