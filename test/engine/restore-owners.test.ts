// Owners restored as root: every file, directory and link gets the uid and gid it was backed up
// with, whether restore had to chown it or made it with that owner already (the restore skips
// the chown then), also under a set-group-ID target whose group new folders inherit.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { Snapshot } from '../../src/core/snapshot-format.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

const IS_ROOT = process.getuid?.() === 0;

let root: string;
let src: string;
let repo: Repository;
let snapshot: Snapshot;

/** Files (content size) with their owner and mode; directories first. Files above the 512 KiB
 *  min chunk are written in parts, the rest whole. */
const TREE: { rel: string; uid: number; gid: number; mode: number; size?: number; link?: string }[] = [
  { rel: 'sub', uid: 1234, gid: 1234, mode: 0o2775 },
  { rel: 'sub/deeper', uid: 0, gid: 0, mode: 0o755 },
  { rel: 'root-root', uid: 0, gid: 0, mode: 0o644, size: 100 },
  { rel: 'other-other', uid: 1234, gid: 5678, mode: 0o640, size: 100 },
  { rel: 'root-other', uid: 0, gid: 5678, mode: 0o644, size: 100 },
  { rel: 'setuid-other', uid: 1234, gid: 0, mode: 0o4755, size: 100 },
  { rel: 'setgid-root', uid: 0, gid: 0, mode: 0o2755, size: 100 },
  { rel: 'empty-other', uid: 1234, gid: 1234, mode: 0o600, size: 0 },
  { rel: 'parts-root', uid: 0, gid: 0, mode: 0o644, size: 3_000_000 },
  { rel: 'parts-other', uid: 1234, gid: 5678, mode: 0o644, size: 3_000_000 },
  { rel: 'sub/root-root', uid: 0, gid: 0, mode: 0o644, size: 200 },
  { rel: 'sub/other-same', uid: 1234, gid: 1234, mode: 0o644, size: 200 },
  { rel: 'sub/deeper/root-other', uid: 0, gid: 1234, mode: 0o644, size: 300 },
  { rel: 'sub/deeper/root-root', uid: 0, gid: 0, mode: 0o644, size: 300 },
  { rel: 'link-other', uid: 1234, gid: 5678, mode: 0o777, link: 'root-root' },
];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-restore-owners-'));
  src = path.join(root, 'src');
  mkdirSync(src);
  for (const e of TREE) {
    const p = path.join(src, e.rel);
    if (e.link !== undefined) symlinkSync(e.link, p);
    else if (e.size === undefined) mkdirSync(p);
    else writeFileSync(p, randomBytes(e.size));
  }
  if (!IS_ROOT) return;
  for (const e of TREE) {
    const p = path.join(src, e.rel);
    lchownSync(p, e.uid, e.gid);
    if (e.link === undefined) chmodSync(p, e.mode);
  }
  ({ repo } = await newTestRepo());
  ({ snapshot } = await backup(repo, { paths: [src], program: 'test' }));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** uid, gid and mode of every entry under `dir`, by path relative to it. */
function owners(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, r));
      out[r] = `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
      if (st.isDirectory()) visit(r);
    }
  };
  visit('');
  return out;
}

describe.skipIf(!IS_ROOT)('restore as root', () => {
  it('gives every entry its owner and mode, in a new target', async () => {
    const target = path.join(root, 'fresh');
    const result = await restore(repo, snapshot, { target, owners: true });
    expect(result.errors).toEqual([]);
    expect(owners(path.join(target, src))).toEqual(owners(src));
  });

  it('gives every entry its owner and mode under a set-group-ID target, whose group new folders inherit', async () => {
    const target = path.join(root, 'setgid');
    mkdirSync(target);
    chownSync(target, 0, 4321);
    chmodSync(target, 0o2775);
    const result = await restore(repo, snapshot, { target, owners: true });
    expect(result.errors).toEqual([]);
    // (the folders restore makes inherit the target's group until their own metadata is set,
    // last: a file made in them has that group, not the process's)
    expect(owners(path.join(target, src))).toEqual(owners(src));
  });
});
