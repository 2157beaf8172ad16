import picomatch from 'picomatch';

/** Decides whether an absolute path is excluded. */
export type Excluder = (absPath: string, isDir: boolean) => boolean;

/** Compiles exclude globs with restic's rules: a pattern with a slash matches the absolute path
 *  (and so everything under a matching directory, since the walk does not descend into it); a
 *  pattern without one matches the base name at any depth. `**` spans directories; dot files are
 *  matched like any other. A trailing slash limits a pattern to directories. */
export function compileExcludes(patterns: readonly string[]): Excluder {
  if (patterns.length === 0) return () => false;
  const compile = (list: string[]): ((s: string) => boolean) => (list.length === 0 ? () => false : picomatch(list, { dot: true }));
  const split = (dirOnly: boolean): { full: (s: string) => boolean; base: (s: string) => boolean } => {
    const chosen = patterns.filter((p) => p.endsWith('/') === dirOnly).map((p) => (dirOnly ? p.slice(0, -1) : p));
    return { full: compile(chosen.filter((p) => p.includes('/'))), base: compile(chosen.filter((p) => !p.includes('/'))) };
  };
  const any = split(false);
  const dirs = split(true);
  return (absPath, isDir) => {
    const base = absPath.slice(absPath.lastIndexOf('/') + 1);
    if (any.full(absPath) || any.base(base)) return true;
    return isDir && (dirs.full(absPath) || dirs.base(base));
  };
}
