/**
 * File trees for end-to-end tests: build one on disk from a list of entries (odd names as
 * Buffers, symlinks, hard links, sparse files, FIFOs), scan one with lstat and content hashes,
 * and compare two scans the way a restore must reproduce a backup.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';

/** 1 MiB, for sizes. */
export const MiB = 1024 * 1024;

/** Incompressible bytes. */
export function randomBuffer(sizeBytes: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(sizeBytes));
}

/** A path relative to a tree root: a string, or a Buffer for names that are not valid UTF-8. */
export type RelPath = string | Buffer;

/** One entry of a tree to build; parents are created as needed. */
export type TreeEntry =
  | { readonly kind: 'file'; readonly path: RelPath; readonly data?: Uint8Array | string; readonly mode?: number; readonly mtime?: Date }
  | { readonly kind: 'dir'; readonly path: RelPath; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: RelPath; readonly target: string }
  | { readonly kind: 'hardlink'; readonly path: RelPath; readonly existing: RelPath }
  | { readonly kind: 'sparse'; readonly path: RelPath; readonly sizeBytes: number; readonly writes: readonly { offset: number; data: Uint8Array }[] }
  | { readonly kind: 'fifo'; readonly path: RelPath };

/** The absolute path of `rel` under `root`, as a Buffer (so any bytes pass through). */
export function under(root: string, rel: RelPath): Buffer {
  return Buffer.concat([Buffer.from(root + '/'), typeof rel === 'string' ? Buffer.from(rel) : rel]);
}

/** Creates `entries` under `root`, in order. */
export function buildTree(root: string, entries: readonly TreeEntry[]): void {
  fs.mkdirSync(root, { recursive: true });
  for (const e of entries) {
    const p = under(root, e.path);
    const parent = p.subarray(0, p.lastIndexOf(0x2f));
    fs.mkdirSync(parent, { recursive: true });
    switch (e.kind) {
      case 'file':
        fs.writeFileSync(p, e.data ?? '');
        fs.chmodSync(p, e.mode ?? 0o644);
        if (e.mtime) fs.utimesSync(p, e.mtime, e.mtime);
        break;
      case 'dir':
        fs.mkdirSync(p, { recursive: true });
        fs.chmodSync(p, e.mode ?? 0o755);
        break;
      case 'symlink':
        fs.symlinkSync(e.target, p);
        break;
      case 'hardlink':
        fs.linkSync(under(root, e.existing), p);
        break;
      case 'sparse': {
        fs.writeFileSync(p, '');
        fs.truncateSync(p, e.sizeBytes);
        const fd = fs.openSync(p, 'r+');
        try {
          for (const w of e.writes) fs.writeSync(fd, w.data, 0, w.data.length, w.offset);
        } finally {
          fs.closeSync(fd);
        }
        break;
      }
      case 'fifo':
        execFileSync('mkfifo', ['--', p.toString('latin1')], { encoding: 'latin1' });
        break;
    }
  }
}

/** What a tree comparison looks at for one path. */
export interface ScannedNode {
  readonly type: 'file' | 'dir' | 'symlink' | 'fifo' | 'other';
  readonly mode: number;
  readonly sizeBytes: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
  readonly nlink: number;
  /** Bytes allocated on disk (st_blocks × 512). */
  readonly allocatedBytes: number;
  /** sha256 of a regular file's content. */
  readonly sha256?: string;
  /** A symlink's target bytes, as latin1. */
  readonly linkTarget?: string;
}

/** A scanned tree: relative byte paths (latin1 strings; '' is the root) to what is there. */
export type ScannedTree = Map<string, ScannedNode>;

function typeOf(st: BigIntStats): ScannedNode['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

async function hashFile(p: Buffer): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** lstat of every path under `root` (root included), with content hashes and link targets. */
export async function scanTree(root: string | Buffer): Promise<ScannedTree> {
  const out: ScannedTree = new Map();
  const base = typeof root === 'string' ? Buffer.from(root) : root;
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? base : Buffer.concat([base, Buffer.from('/' + rel, 'latin1')]);
    const st = fs.lstatSync(abs, { bigint: true });
    const type = typeOf(st);
    out.set(rel, {
      type,
      mode: Number(st.mode & 0o7777n),
      sizeBytes: Number(st.size),
      mtimeNs: st.mtimeNs,
      ino: st.ino,
      nlink: Number(st.nlink),
      allocatedBytes: Number(st.blocks) * 512,
      ...(type === 'file' ? { sha256: await hashFile(abs) } : {}),
      ...(type === 'symlink' ? { linkTarget: fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1') } : {}),
    });
    if (type === 'dir') {
      for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) {
        const n = name.toString('latin1');
        await visit(rel === '' ? n : `${rel}/${n}`);
      }
    }
  };
  await visit('');
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A byte path for messages: as text, with \xNN for bytes that are not valid UTF-8. */
export function showPath(rel: string): string {
  const bytes = Buffer.from(rel, 'latin1');
  try {
    return JSON.stringify(strictUtf8.decode(bytes));
  } catch {
    return `"${[...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}"`;
  }
}

function linkGroups(t: ScannedTree): string[] {
  const byIno = new Map<bigint, string[]>();
  for (const [p, n] of t) {
    if (n.type !== 'file' || n.nlink < 2) continue;
    byIno.set(n.ino, [...(byIno.get(n.ino) ?? []), p]);
  }
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort().map(showPath).join(' = ')).sort();
}

/** Differences between two scanned trees, as readable lines (empty when they match): paths,
 *  types, permission bits, sizes, contents, link targets, mtimes to the millisecond, and which
 *  paths are hard links of each other. Sockets and devices are compared by type only. */
export function compareTrees(expected: ScannedTree, actual: ScannedTree): string[] {
  const diffs: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    const where = showPath(p);
    if (!a) {
      diffs.push(`${where}: missing`);
      continue;
    }
    if (a.type !== e.type) {
      diffs.push(`${where}: type ${a.type}, expected ${e.type}`);
      continue;
    }
    if (e.type !== 'symlink' && a.mode !== e.mode) diffs.push(`${where}: mode ${a.mode.toString(8)}, expected ${e.mode.toString(8)}`);
    if (e.type === 'file' && a.sizeBytes !== e.sizeBytes) diffs.push(`${where}: size ${a.sizeBytes}, expected ${e.sizeBytes}`);
    if (a.sha256 !== e.sha256) diffs.push(`${where}: content differs`);
    if (a.linkTarget !== e.linkTarget) diffs.push(`${where}: link target ${showPath(a.linkTarget ?? '')}, expected ${showPath(e.linkTarget ?? '')}`);
    const dt = a.mtimeNs - e.mtimeNs;
    if (dt >= 1_000_000n || dt <= -1_000_000n) diffs.push(`${where}: mtime ${a.mtimeNs} ns, expected ${e.mtimeNs} ns`);
  }
  for (const p of actual.keys()) if (!expected.has(p)) diffs.push(`${showPath(p)}: unexpected`);
  const eg = linkGroups(expected);
  const ag = linkGroups(actual);
  if (eg.join('\n') !== ag.join('\n')) diffs.push(`hard links: ${JSON.stringify(ag)}, expected ${JSON.stringify(eg)}`);
  return diffs;
}
