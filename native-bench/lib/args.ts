// Shared command-line helpers for the bench scripts.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT, SMALL, type CorpusParams } from './corpus-gen.js';

/** Parse a byte count such as `3000000000`, `300M`, `3G` (decimal units: k=1e3, M=1e6, G=1e9). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?$/.exec(s.trim());
  if (!m) throw new Error(`bad byte count: ${s}`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

export function parseCount(s: string, name: string): number {
  const n = Number(s.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a non-negative integer, got ${s}`);
  return n;
}

export interface CorpusFlags {
  small?: boolean;
  files?: string;
  bytes?: string;
  seed?: string;
}

/** Corpus parameters from --small / --files / --bytes / --seed (explicit flags override the preset). */
export function corpusParams(v: CorpusFlags): CorpusParams {
  const base = v.small ? SMALL : DEFAULT;
  return {
    files: v.files !== undefined ? parseCount(v.files, 'files') : base.files,
    bytes: v.bytes !== undefined ? parseBytes(v.bytes) : base.bytes,
    seed: v.seed !== undefined ? parseCount(v.seed, 'seed') : base.seed,
  };
}

export const CORPUS_OPTIONS = {
  small: { type: 'boolean' },
  files: { type: 'string' },
  bytes: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(fileURLToPath(url)) === realpathSync(argv1);
  } catch {
    return false;
  }
}
