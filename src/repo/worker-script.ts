import { setFlagsFromString } from 'node:v8';

/** The URL of the worker script `file` (e.g. `seal-worker.js`) that sits beside the module at
 *  `moduleUrl` (its import.meta.url) in dist/. Under a TypeScript runner (vitest, tsx) that
 *  module is src/<dir>/<name>.ts, and a worker thread loads only JavaScript: it then runs the
 *  built dist/<dir>/<file> (`npm test` builds first). */
export function workerScript(moduleUrl: string, file: string): URL {
  if (!moduleUrl.endsWith('.ts')) return new URL(`./${file}`, moduleUrl);
  const dir = new URL('.', moduleUrl).pathname.split('/').at(-2)!;
  return new URL(`../../dist/${dir}/${file}`, moduleUrl);
}

let heapFlagCleared = false;

/**
 * Call before starting a worker thread: lets it take the young generation its resourceLimits
 * ask for. V8's --max-semi-space-size, which the CLI's shebang sets for the main thread
 * (decisions §30), takes precedence over a worker's maxYoungGenerationSizeMb, so every worker
 * got the main thread's semi-spaces: measured under 4 MiB ones, 8 MiB of new space in a worker
 * asking for 1 or 4 MiB (decisions §33).
 * The flag is read when an isolate is made, so clearing it once the main isolate exists
 * changes only the isolates made after (as the flag `--expose-gc` is set for workers in
 * worker-gc.ts); the main thread keeps its own.
 */
export function workerHeapFromLimits(): void {
  if (heapFlagCleared) return;
  heapFlagCleared = true;
  setFlagsFromString('--max-semi-space-size=0');
}
