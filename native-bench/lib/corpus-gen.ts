// Writes a planned corpus to disk and keeps a corpus.json manifest next to the tree, so an existing
// corpus with the same parameters is reused instead of regenerated.
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePlan, type PlannedFile } from './plan.js';
import { Rng } from './rng.js';
import { newTextState, textBytes, Vocabulary, type TextKind } from './text.js';

/** Bump when the generator's output changes, so old corpora are regenerated. */
export const GENERATOR_VERSION = 1;
export const DEFAULT = { files: 150_000, bytes: 3_000_000_000, seed: 1 } as const;
export const SMALL = { files: 20_000, bytes: 300_000_000, seed: 1 } as const;

export interface CorpusParams {
  files: number;
  bytes: number;
  seed: number;
}

export interface Manifest {
  generatorVersion: number;
  params: CorpusParams;
  files: number;
  dirs: number;
  bytes: number;
  bytesByKind: Record<string, number>;
  dupBytes: number;
  seconds: number;
  createdAt: string;
}

export interface Corpus {
  dir: string;
  tree: string;
  manifest: Manifest;
}

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export function workDir(): string {
  return resolve(process.env['CAIRN_BENCH_DIR'] ?? '/tmp/cairn-bench');
}

export function defaultCorpusDir(p: CorpusParams): string {
  return join(workDir(), `corpus-${p.files}f-${p.bytes}b-s${p.seed}`);
}

/** Refuse to put generated data inside the checkout. */
export function assertOutsideRepo(dir: string): void {
  const abs = resolve(dir);
  if (abs === REPO_ROOT || abs.startsWith(REPO_ROOT + sep)) throw new Error(`refusing to write bench data inside the repo: ${abs}`);
}

export function readManifest(dir: string): Manifest | undefined {
  const p = join(dir, 'corpus.json');
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

function sameParams(m: Manifest, p: CorpusParams): boolean {
  return m.generatorVersion === GENERATOR_VERSION && m.params.files === p.files && m.params.bytes === p.bytes && m.params.seed === p.seed;
}

const BLOCK = 4 << 20;

function writeLarge(path: string, f: PlannedFile, vocab: Vocabulary, rng: Rng): void {
  const fd = openSync(path, 'w');
  try {
    const rnd = rng.byteStream();
    const st = newTextState(rng);
    const kinds: TextKind[] = ['sql', 'csv', 'log'];
    const pRandom = 0.04 + 0.2 * rng.float();
    for (let left = f.size; left > 0;) {
      const n = Math.min(left, rng.int(256 << 10, BLOCK));
      const buf = rng.chance(pRandom) ? rnd.next(n) : textBytes(vocab, rng, rng.pick(kinds), n, st);
      writeSync(fd, buf);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

function copyRange(src: number, dst: number, from: number, to: number, buf: Buffer): void {
  for (let pos = from; pos < to;) {
    const n = readSync(src, buf, 0, Math.min(buf.length, to - pos), pos);
    if (n <= 0) throw new Error('short read while copying');
    writeSync(dst, buf.subarray(0, n));
    pos += n;
  }
}

function writeEdited(path: string, srcPath: string, srcSize: number, f: PlannedFile, rng: Rng): void {
  const src = openSync(srcPath, 'r');
  const dst = openSync(path, 'w');
  const buf = Buffer.allocUnsafe(BLOCK);
  const rnd = rng.byteStream();
  try {
    let cur = 0;
    for (const e of f.edits) {
      copyRange(src, dst, cur, e.offset, buf);
      writeSync(dst, rnd.next(e.insert));
      cur = e.offset + e.remove;
    }
    copyRange(src, dst, cur, srcSize, buf);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

function writeFile(tree: string, f: PlannedFile, files: PlannedFile[], vocab: Vocabulary): void {
  const path = join(tree, f.path);
  const rng = new Rng(f.seed);
  switch (f.kind) {
    case 'text':
      writeFileSync(path, textBytes(vocab, rng, f.text, f.size, newTextState(rng)));
      break;
    case 'binary':
      writeFileSync(path, rng.byteStream().next(f.size));
      break;
    case 'large':
      writeLarge(path, f, vocab, rng);
      break;
    case 'copy':
    case 'edited': {
      const src = files[f.src];
      if (!src) throw new Error(`bad source for ${f.path}`);
      if (f.kind === 'copy') copyFileSync(join(tree, src.path), path);
      else writeEdited(path, join(tree, src.path), src.size, f, rng);
      break;
    }
  }
}

/** Generate the corpus into dir/tree unless dir/corpus.json already describes the same parameters. */
export function ensureCorpus(p: CorpusParams, dir = defaultCorpusDir(p), log: (s: string) => void = console.error): Corpus {
  assertOutsideRepo(dir);
  const tree = join(dir, 'tree');
  const existing = readManifest(dir);
  if (existing && sameParams(existing, p) && existsSync(tree)) {
    log(`corpus: reusing ${dir} (${existing.files} files, ${(existing.bytes / 1e6).toFixed(0)} MB)`);
    return { dir, tree, manifest: existing };
  }
  const t0 = performance.now();
  rmSync(join(dir, 'corpus.json'), { force: true });
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const vocab = new Vocabulary(new Rng(p.seed ^ 0x5eed5eed));
  const plan = makePlan(p.seed, p.files, p.bytes, vocab);
  for (const d of plan.dirs) mkdirSync(join(tree, d), { recursive: true });
  const byKind: Record<string, number> = {};
  let bytes = 0;
  let done = 0;
  let lastLog = t0;
  // Originals first, then copies and edited copies (which read their sources back).
  for (const phase of [false, true]) {
    for (const f of plan.files) {
      if ((f.kind === 'copy' || f.kind === 'edited') !== phase) continue;
      writeFile(tree, f, plan.files, vocab);
      byKind[f.kind] = (byKind[f.kind] ?? 0) + f.size;
      bytes += f.size;
      done++;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`corpus: ${done}/${plan.files.length} files, ${(bytes / 1e6).toFixed(0)} MB, ${((lastLog - t0) / 1000).toFixed(0)} s`);
      }
    }
  }
  const manifest: Manifest = {
    generatorVersion: GENERATOR_VERSION,
    params: p,
    files: plan.files.length,
    dirs: plan.dirs.length,
    bytes,
    bytesByKind: byKind,
    dupBytes: (byKind['copy'] ?? 0) + (byKind['edited'] ?? 0),
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    createdAt: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'corpus.json'), JSON.stringify(manifest, null, 2) + '\n');
  log(`corpus: wrote ${manifest.files} files, ${(bytes / 1e6).toFixed(0)} MB in ${manifest.seconds} s to ${tree}`);
  return { dir, tree, manifest };
}
