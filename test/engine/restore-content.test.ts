// The restore plan (columns of numbers keyed by index rows): every place a blob goes gets it,
// and a file whose blob no index lists is reported and left out while the rest is restored.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { CompactIndex } from '../../src/repo/compact-index.js';
import type { Repository } from '../../src/repo/repository.js';
import { newTestRepo } from '../repo/fixtures.js';

let root: string;
let src: string;
let repo: Repository;
const at = (rel: string): string => path.join(src, rel);
const block = randomBytes(700 * 1024);
const files: Record<string, Buffer> = {
  'big.bin': randomBytes(2_500_000),
  'repeats.bin': Buffer.concat(Array.from({ length: 6 }, () => block)),
  'one.txt': Buffer.from('the same small content\n'),
  'd/same-as-one.txt': Buffer.from('the same small content\n'),
  'd/e/again.txt': Buffer.from('the same small content\n'),
  'empty': Buffer.alloc(0),
  'd/unique.txt': Buffer.from('only here\n'),
};

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-restore-plan-'));
  src = path.join(root, 'src');
  mkdirSync(at('d/e'), { recursive: true });
  for (const [rel, data] of Object.entries(files)) writeFileSync(at(rel), data);
  ({ repo } = await newTestRepo());
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('restore plan', () => {
  it('writes every blob to every file and offset that holds it', async () => {
    const { snapshot } = await backup(repo, { paths: [src], program: 'test' });
    const target = path.join(root, 'restored');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([]);
    expect(result.files).toBe(Object.keys(files).length);
    for (const [rel, data] of Object.entries(files)) {
      const back = path.join(target, at(rel));
      expect(readFileSync(back).equals(data), rel).toBe(true);
      expect(statSync(back).mode).toBe(statSync(at(rel)).mode);
    }
  });

  it('reports a file whose blob no index lists, and restores the others', async () => {
    const { snapshot } = await backup(repo, { paths: [src], program: 'test' });
    // an index without the blob of d/unique.txt (as if its index file were lost)
    const missing = Buffer.from(repo.hasher.raw(files['d/unique.txt']!)).toString('hex');
    const partial = new CompactIndex();
    for (const e of repo.index.entries()) {
      if (e.id === missing) continue;
      partial.addPack(e.packId, e.salt, [{ type: e.type, id: Buffer.from(e.id, 'hex'), offset: e.offset, length: e.length, rawLength: e.rawLength }]);
    }
    repo.index = partial;
    const target = path.join(root, 'restored');
    const result = await restore(repo, snapshot, { target, owners: false });
    expect(result.errors).toEqual([{ path: at('d/unique.txt'), message: expect.stringContaining('is not in the index') }]);
    expect(existsSync(path.join(target, at('d/unique.txt')))).toBe(false);
    for (const [rel, data] of Object.entries(files)) {
      if (rel === 'd/unique.txt') continue;
      expect(readFileSync(path.join(target, at(rel))).equals(data), rel).toBe(true);
    }
  });
});
