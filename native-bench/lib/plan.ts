// The corpus plan: directory skeleton, file kinds, sizes, names and duplication, all from one seed.
// Nothing here touches the disk; lib/corpus-gen.ts writes what the plan says.
import { Rng } from './rng.js';
import type { TextKind, Vocabulary } from './text.js';

export type FileKind = 'text' | 'binary' | 'large' | 'copy' | 'edited';

export interface Edit {
  offset: number;
  insert: number;
  remove: number;
}

export interface PlannedFile {
  path: string;
  kind: FileKind;
  size: number;
  seed: number;
  text: TextKind;
  /** Index of the source file for copies and edited copies. */
  src: number;
  edits: Edit[];
}

export interface Plan {
  dirs: string[];
  files: PlannedFile[];
}

/** Fractions of the byte budget per kind; dup bytes are copy + edited (~20%). */
export const SHARE = { large: 0.27, edited: 0.12, binary: 0.05, copy: 0.08 } as const;
const MB = 1_000_000;
const FLAVORS = ['src', 'src', 'logs', 'etc', 'docs', 'data', 'data'] as const;
type Flavor = (typeof FLAVORS)[number];
const TOP = ['srv', 'home', 'var', 'opt', 'etc', 'data', 'usr', 'backup'];
const TEXT_MIX: Record<Flavor, [TextKind, number][]> = {
  src: [['code', 0.8], ['config', 0.1], ['doc', 0.1]],
  logs: [['log', 0.9], ['config', 0.1]],
  etc: [['config', 0.8], ['doc', 0.1], ['code', 0.1]],
  docs: [['doc', 0.8], ['csv', 0.2]],
  data: [['csv', 0.4], ['sql', 0.2], ['config', 0.2], ['log', 0.2]],
};
const EXT: Record<TextKind, string[]> = {
  code: ['ts', 'js', 'py', 'go', 'c', 'h', 'java', 'rb', 'rs', 'sh'],
  log: ['log', 'log', 'log.1', 'out'],
  config: ['conf', 'ini', 'yaml', 'toml', 'json', 'xml'],
  doc: ['md', 'txt', 'html', 'rst'],
  csv: ['csv', 'tsv'],
  sql: ['sql'],
};
const BIN_EXT = ['png', 'jpg', 'gz', 'zip', 'bin', 'so', 'woff2', 'pdf', 'jar', 'mp3'];
const LARGE_EXT = ['img', 'db', 'tar', 'sqlite', 'dump', 'qcow2', 'bak'];

interface Dir {
  path: string;
  depth: number;
  children: number;
  entries: number;
  flavor: Flavor;
}

function pickWeighted<T>(rng: Rng, items: [T, number][]): T {
  let f = rng.float();
  for (const [v, w] of items) {
    if ((f -= w) < 0) return v;
  }
  const last = items[items.length - 1];
  if (!last) throw new Error('empty weights');
  return last[0];
}

function shuffle<T>(rng: Rng, a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = a[i] as T;
    a[i] = a[j] as T;
    a[j] = t;
  }
}

/** Directories of depth 1-7 with 20-60 entries each, enough to hold `files` files at depth >= 2. */
function skeleton(rng: Rng, vocab: Vocabulary, files: number): Dir[] {
  const dirs: Dir[] = [];
  const names = new Map<string, Set<string>>();
  const add = (parent: Dir | undefined, name: string): Dir => {
    const ppath = parent?.path ?? '';
    let used = names.get(ppath);
    if (!used) names.set(ppath, (used = new Set()));
    let n = name;
    for (let i = 2; used.has(n); i++) n = `${name}${i}`;
    used.add(n);
    const flavor = parent && rng.chance(0.75) ? parent.flavor : rng.pick(FLAVORS);
    const d: Dir = { path: ppath ? `${ppath}/${n}` : n, depth: (parent?.depth ?? 0) + 1, children: 0, entries: rng.int(20, 60), flavor };
    if (parent) parent.children++;
    dirs.push(d);
    return d;
  };
  for (const t of TOP) add(undefined, t);
  let slots = 0;
  while (slots < files) {
    const parent = dirs[rng.int(0, dirs.length - 1)];
    if (!parent || parent.depth >= 7 || parent.children >= 12) continue;
    if (parent.depth >= 2 && parent.entries - parent.children > 0) slots--;
    const style = rng.int(0, 9);
    const w = vocab.word(rng);
    const name = style === 0 ? `v${rng.int(0, 9)}.${rng.int(0, 30)}.${rng.int(0, 9)}` : style === 1 ? `${w}-${vocab.word(rng)}` : w;
    const d = add(parent, name);
    if (d.depth >= 2) slots += d.entries;
  }
  return dirs;
}

function uniqueName(used: Set<string>, base: string, ext: string): string {
  let n = `${base}.${ext}`;
  for (let i = 2; used.has(n); i++) n = `${base}-${i}.${ext}`;
  used.add(n);
  return n;
}

/** Scale sizes in place so they sum to about `budget`, within [lo, hi]. */
function scaleTo(files: PlannedFile[], budget: number, lo: number, hi: number): void {
  for (let pass = 0; pass < 4; pass++) {
    const sum = files.reduce((a, f) => a + f.size, 0);
    if (sum <= 0) return;
    const k = budget / sum;
    for (const f of files) f.size = Math.round(Math.min(hi, Math.max(lo, f.size * k)));
  }
}

export function makePlan(seed: number, nFiles: number, nBytes: number, vocab: Vocabulary): Plan {
  const rng = new Rng(seed);
  const dirs = skeleton(rng, vocab, nFiles);
  const slots: Dir[] = [];
  for (const d of dirs) {
    if (d.depth < 2) continue;
    for (let i = 0; i < d.entries - d.children && slots.length < nFiles; i++) slots.push(d);
  }
  // Large files and their edited copies: counts follow from the byte budgets.
  const largeBudget = nBytes * SHARE.large;
  const largeMax = Math.min(200 * MB, Math.max(10 * MB, largeBudget / 2));
  const largeSizes: number[] = [];
  for (let left = largeBudget; left >= Math.min(10 * MB, largeBudget) && largeSizes.length < nFiles / 10;) {
    const s = Math.round(Math.min(left, rng.int(Math.min(10 * MB, largeMax), largeMax)));
    largeSizes.push(s);
    left -= s;
  }
  const nEdited = Math.max(1, Math.round((nBytes * SHARE.edited) / (largeBudget / Math.max(1, largeSizes.length))));
  const nBinary = Math.max(1, Math.round(nFiles * 0.025));
  const nCopy = Math.max(1, Math.round(nFiles * 0.05));
  const nText = nFiles - largeSizes.length - nEdited - nBinary - nCopy;
  if (nText < 1) throw new Error(`too few files (${nFiles}) for the byte budget; raise --files or lower --bytes`);
  const kinds: FileKind[] = [];
  for (const [k, n] of [['large', largeSizes.length], ['edited', nEdited], ['binary', nBinary], ['copy', nCopy], ['text', nText]] as const) {
    for (let i = 0; i < n; i++) kinds.push(k);
  }
  shuffle(rng, kinds);
  const used = new Map<Dir, Set<string>>();
  const copyDirs = new Map<PlannedFile, Dir>();
  const files: PlannedFile[] = slots.map((dir, i) => {
    const kind = kinds[i] ?? 'text';
    const text = pickWeighted(rng, TEXT_MIX[dir.flavor]);
    const base = `${vocab.word(rng)}${rng.chance(0.3) ? '_' + vocab.word(rng) : ''}${rng.chance(0.2) ? '-' + rng.int(1, 999) : ''}`;
    const ext = kind === 'large' || kind === 'edited' ? rng.pick(LARGE_EXT) : kind === 'binary' ? rng.pick(BIN_EXT) : rng.pick(EXT[text]);
    let u = used.get(dir);
    if (!u) used.set(dir, (u = new Set()));
    const size = kind === 'text' ? rng.logNormal(3000, 1.4) : kind === 'binary' ? rng.logUniform(16e3, 8e6) : 0;
    const f: PlannedFile = { path: kind === 'copy' ? '' : `${dir.path}/${uniqueName(u, base, ext)}`, kind, size, seed: rng.u32(), text, src: -1, edits: [] };
    if (kind === 'copy') copyDirs.set(f, dir);
    return f;
  });
  let li = 0;
  for (const f of files) if (f.kind === 'large') f.size = largeSizes[li++] ?? 10 * MB;
  const textBudget = nBytes * (1 - SHARE.large - SHARE.edited - SHARE.binary - SHARE.copy);
  scaleTo(files.filter((f) => f.kind === 'text'), textBudget, 32, 4 * MB);
  scaleTo(files.filter((f) => f.kind === 'binary'), nBytes * SHARE.binary, 4096, 32 * MB);
  // Duplicates: whole copies of text/binary files (binary sources weighted to meet the copy budget),
  // and copies of large files with 1-3 small edits (insertions/replacements) in the middle.
  const texts = files.map((f, i) => [f, i] as const).filter(([f]) => f.kind === 'text');
  const bins = files.map((f, i) => [f, i] as const).filter(([f]) => f.kind === 'binary');
  const larges = files.map((f, i) => [f, i] as const).filter(([f]) => f.kind === 'large');
  const mean = (xs: (readonly [PlannedFile, number])[]): number => xs.reduce((a, [f]) => a + f.size, 0) / Math.max(1, xs.length);
  const pBin = Math.min(1, Math.max(0, ((nBytes * SHARE.copy) / nCopy - mean(texts)) / Math.max(1, mean(bins) - mean(texts))));
  for (const f of files) {
    if (f.kind === 'copy') {
      const [src, si] = rng.pick(rng.chance(pBin) ? bins : texts);
      f.src = si;
      f.size = src.size;
      f.text = src.text;
      // A copy keeps its source's file name (same file shipped in several places).
      const dir = copyDirs.get(f);
      const u = dir && used.get(dir);
      if (!dir || !u) throw new Error('copy without a directory');
      const name = src.path.slice(src.path.lastIndexOf('/') + 1);
      const dot = name.indexOf('.');
      f.path = `${dir.path}/${uniqueName(u, name.slice(0, dot), name.slice(dot + 1))}`;
    } else if (f.kind === 'edited') {
      const [src, si] = rng.pick(larges);
      f.src = si;
      const n = rng.int(1, 3);
      for (let e = 0; e < n; e++) {
        f.edits.push({ offset: Math.floor(src.size * (0.1 + 0.8 * rng.float())), insert: rng.int(1, 4096), remove: rng.chance(0.5) ? rng.int(1, 4096) : 0 });
      }
      f.edits.sort((a, b) => a.offset - b.offset);
      let end = 0;
      for (const e of f.edits) {
        e.offset = Math.max(e.offset, end);
        e.remove = Math.min(e.remove, src.size - e.offset);
        end = e.offset + e.remove;
      }
      f.size = src.size + f.edits.reduce((a, e) => a + e.insert - e.remove, 0);
    }
  }
  return { dirs: dirs.map((d) => d.path), files };
}
