// Walking, warming and verifying file trees.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeListing {
  files: Map<string, number>;
  dirs: number;
  bytes: number;
}

/** All regular files under root (relative path -> size), directory count and total bytes. */
export function walk(root: string): TreeListing {
  const files = new Map<string, number>();
  let dirs = 0;
  let bytes = 0;
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop() ?? '';
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        dirs++;
        stack.push(r);
      } else if (e.isFile()) {
        const size = statSync(join(root, r)).size;
        files.set(r, size);
        bytes += size;
      }
    }
  }
  return { files, dirs, bytes };
}

const BUF = Buffer.allocUnsafe(4 << 20);

function readAll(path: string, onChunk?: (b: Buffer) => void): void {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, BUF, 0, BUF.length, null);
      if (n <= 0) break;
      onChunk?.(BUF.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** Read every file once so the page cache is warm; returns seconds taken. */
export function warm(root: string, listing: TreeListing): number {
  const t0 = performance.now();
  for (const rel of listing.files.keys()) readAll(join(root, rel));
  return (performance.now() - t0) / 1000;
}

export function sha256File(path: string): string {
  const h = createHash('sha256');
  readAll(path, (b) => h.update(b));
  return h.digest('hex');
}

export interface Verification {
  ok: boolean;
  detail: string;
}

/** Compare a restored tree to the corpus: same file set and sizes, hashes of a sample, optional `diff -r`. */
export function verifyTree(corpus: string, expected: TreeListing, restored: string, fullDiff: boolean): Verification {
  let got: TreeListing;
  try {
    got = walk(restored);
  } catch (e) {
    return { ok: false, detail: `restored tree missing: ${restored} (${(e as Error).message})` };
  }
  const problems: string[] = [];
  if (got.files.size !== expected.files.size) problems.push(`file count ${got.files.size} != ${expected.files.size}`);
  if (got.dirs !== expected.dirs) problems.push(`dir count ${got.dirs} != ${expected.dirs}`);
  let missing = 0;
  let badSize = 0;
  for (const [rel, size] of expected.files) {
    const s = got.files.get(rel);
    if (s === undefined) missing++;
    else if (s !== size) badSize++;
  }
  if (missing) problems.push(`${missing} files missing`);
  if (badSize) problems.push(`${badSize} files with wrong size`);
  const names = [...expected.files.keys()].sort();
  const step = Math.max(1, Math.floor(names.length / 1000));
  const sample = new Set(names.filter((_, i) => i % step === 0));
  for (const [rel] of [...expected.files].sort((a, b) => b[1] - a[1]).slice(0, 5)) sample.add(rel);
  let badHash = 0;
  for (const rel of sample) {
    if (!got.files.has(rel)) continue;
    if (sha256File(join(corpus, rel)) !== sha256File(join(restored, rel))) badHash++;
  }
  if (badHash) problems.push(`${badHash}/${sample.size} sampled hashes differ`);
  let how = `${got.files.size} files, sizes match, ${sample.size} sampled sha256 match`;
  if (fullDiff) {
    const r = spawnSync('diff', ['-rq', corpus, restored], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) problems.push(`diff -r: ${(r.stdout || r.stderr).split('\n').slice(0, 3).join('; ')}`);
    else how += ', diff -r clean';
  }
  return problems.length > 0 ? { ok: false, detail: problems.join('; ') } : { ok: true, detail: how };
}
