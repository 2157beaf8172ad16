/** The URL of the worker script `file` (e.g. `seal-worker.js`) that sits beside the module at
 *  `moduleUrl` (its import.meta.url) in dist/. Under a TypeScript runner (vitest, tsx) that
 *  module is src/<dir>/<name>.ts, and a worker thread loads only JavaScript: it then runs the
 *  built dist/<dir>/<file> (`npm test` builds first). */
export function workerScript(moduleUrl: string, file: string): URL {
  if (!moduleUrl.endsWith('.ts')) return new URL(`./${file}`, moduleUrl);
  const dir = new URL('.', moduleUrl).pathname.split('/').at(-2)!;
  return new URL(`../../dist/${dir}/${file}`, moduleUrl);
}
