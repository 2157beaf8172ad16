/** Journaled paths and the ancestors of each, so whether a directory may hold a change is a few
 *  set lookups, O(depth), whatever the number of paths. */
export class PathIndex {
  readonly #paths = new Set<string>();
  readonly #ancestors = new Set<string>();

  constructor(paths: Iterable<string>) {
    for (const p of paths) {
      this.#paths.add(p);
      // once an ancestor is in the set, all of its own ancestors are too
      for (let a = parentOf(p); a !== undefined && !this.#ancestors.has(a); a = parentOf(a)) this.#ancestors.add(a);
    }
  }

  /** True when `dir` is journaled, holds a journaled path, or is inside a journaled path. */
  mayHaveChanged(dir: string): boolean {
    if (this.#ancestors.has(dir)) return true;
    for (let d: string | undefined = dir; d !== undefined; d = parentOf(d)) if (this.#paths.has(d)) return true;
    return false;
  }
}

function parentOf(p: string): string | undefined {
  if (p === '/') return undefined;
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}
