#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=2 --v8-pool-size=2
// The flags above: V8's young generation grows to 2 x 16 MiB semi-spaces, though what survives a
// backup's scavenges is a few MiB. 4 MiB semi-spaces cut a 150k-file backup's peak RSS by 30-45
// MiB at the same speed (docs/decisions.md §30). V8's platform threads (background compiling and
// GC) are one per core up to 4, and each kept a malloc arena of ~2 MiB of freed compiler memory:
// 2 threads cut a backup's peak by 6-10 MiB at the same speed (§34). V8 reads both when the
// process starts, so only the command line can set them: run `cairn` (npm's bin, or this file
// made executable), or pass the flags to node yourself. `env -S` needs coreutils 8.30 (2018),
// older than Node 20's glibc.
// MALLOC_MMAP_THRESHOLD_: glibc serves allocations from 128 KiB up with mmap, but raises that
// threshold to the size of each such block freed, up to 32 MiB, after which large buffers come
// from the threads' heaps and stay there, fragmented: a fixed 1 MiB keeps larger ones mapped
// and returned when freed. A 150k-file restore peaked 15 MiB lower, a backup 10 MiB, at speeds
// within the noise (256 KiB: slower, and no lower for a backup; docs/decisions.md §40).
import v8 from 'node:v8';

// V8 lets the old generation grow up to 4x what survived the last full GC when GC is cheap, and
// a backup's walk promotes much short-lived garbage: its heap reached 80-110 MiB around 16-31
// MiB alive. At 2x it stays far smaller for no measured cost in speed (docs/decisions.md §26);
// at 1.4x a restore's peak is ~8 MiB lower again, a backup's a little, at the same speed (1.2x
// was no lower; §34). V8 reads this flag at each GC, so setting it here takes effect.
v8.setFlagsFromString('--heap-growing-percent=40');

// `cairn ls | head` closes stdout early: that ends the command quietly, as it does for ls(1).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  throw err;
});

const { runCli } = await import('./program.js');
const controller = new AbortController();
// The agent handles its own signals (stop scheduling, cancel at a safe point, exit cleanly).
const isAgent = process.argv.slice(2).includes('agent');
let interrupts = 0;
for (const sig of isAgent ? [] : (['SIGINT', 'SIGTERM'] as const)) {
  process.on(sig, () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort(new Error(`${sig}`));
  });
}
process.exitCode = await runCli(process.argv.slice(2), controller.signal);
