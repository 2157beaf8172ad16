// Backups narrowed by a change journal (BackupOptions.changes): a directory the journal does not
// report is not read, its subtree comes from the parent snapshot, and the summary still counts
// it; different excludes, changed directory entries or missing blobs fall back to a real walk.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotId } from '../../src/core/ids.js';
import { BlobType } from '../../src/core/pack-format.js';
import type { BackupSummary } from '../../src/core/snapshot-format.js';
import { type BackupOptions, type BackupResult, backup } from '../../src/engine/backup.js';
import { NO_PROGRESS, type ProgressSink } from '../../src/engine/progress.js';
import { restore } from '../../src/engine/restore.js';
import type { MemoryBlobStore } from '../../src/backend/memory-store.js';
import { type Repository, openRepository, readPackIndex } from '../../src/repo/repository.js';
import { compareTrees, scanTree } from '../e2e/helpers/tree.js';
import { newTestRepo, testEnv } from '../repo/fixtures.js';

type Changes = NonNullable<BackupOptions['changes']>;

/** A journal that reports `dirs` (each with its ancestors and everything inside it) and records
 *  every directory it is asked about. */
function journal(...dirs: string[]): Changes & { asked: string[] } {
  const asked: string[] = [];
  return {
    base: first.snapshotId,
    asked,
    mayHaveChanged(dir) {
      asked.push(dir);
      return dirs.some((d) => d === dir || d.startsWith(dir + '/') || dir.startsWith(d + '/'));
    },
  };
}

/** The counters a walk produces (bytesAdded and blobsAdded depend on what the repository held). */
function walkCounters(s: BackupSummary): Partial<BackupSummary> {
  const { filesNew, filesChanged, filesUnmodified, dirs, bytesRead, bytesTotal, errors } = s;
  return { filesNew, filesChanged, filesUnmodified, dirs, bytesRead, bytesTotal, errors };
}

let root: string;
let src: string;
let repo: Repository;
let store: MemoryBlobStore;
let first: BackupResult;

const at = (rel: string): string => path.join(src, rel);
const run = (parent: SnapshotId | 'none', over: Partial<BackupOptions> = {}): Promise<BackupResult> =>
  backup(repo, { paths: [src], program: 'test', parent, ...over });

/** Restores `r`'s snapshot into a fresh folder and returns where `src` landed. */
async function restored(r: BackupResult): Promise<string> {
  const target = path.join(root, `restore-${r.snapshotId.slice(0, 8)}`);
  const result = await restore(repo, r.snapshot, { target, owners: false });
  expect(result.errors).toEqual([]);
  return path.join(target, src);
}

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-narrow-'));
  src = path.join(root, 'src');
  for (const d of ['a/deep', 'b/sub/empty', 'c']) mkdirSync(at(d), { recursive: true });
  writeFileSync(at('top.txt'), 'top\n');
  writeFileSync(at('a/one.txt'), 'one, first version\n');
  writeFileSync(at('a/deep/two.txt'), 'two\n');
  writeFileSync(at('b/three.txt'), 'three\n');
  writeFileSync(at('b/sub/four.bin'), randomBytes(50_000));
  writeFileSync(at('c/five.txt'), 'five\n');
  symlinkSync('../a/one.txt', at('c/link'));
  ({ repo, store } = await newTestRepo());
  first = await run('none');
  expect(first.errors).toEqual([]);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('backup narrowed by a change journal', () => {
  it('does not read a directory the journal says is unchanged: its subtree comes from the parent', async () => {
    // the file changes in place, so its directory's own entries (mtime, ctime) stay the same
    writeFileSync(at('a/one.txt'), 'one, second version, not seen\n');
    const changes = journal(at('b'));
    const r = await run(first.snapshotId, { changes });
    expect(r.snapshot.summary).toMatchObject({ filesNew: 0, filesChanged: 0, bytesRead: 0 });
    expect(changes.asked).toContain(at('a'));
    expect(changes.asked).not.toContain(at('a/deep')); // reused whole, never walked
    expect(readFileSync(path.join(await restored(r), 'a/one.txt'), 'utf8')).toBe('one, first version\n');
  });

  it('reads what changed in a directory the journal reports', async () => {
    const four = randomBytes(60_000);
    writeFileSync(at('b/sub/four.bin'), four);
    const r = await run(first.snapshotId, { changes: journal(at('b/sub/four.bin')) });
    expect(r.snapshot.summary).toMatchObject({ filesChanged: 1, bytesRead: 60_000 });
    expect(readFileSync(path.join(await restored(r), 'b/sub/four.bin')).equals(four)).toBe(true);
  });

  it.each([
    ['nothing changed', (): void => undefined, []],
    ['a file changed in a reported directory', (): void => writeFileSync(at('b/three.txt'), 'three, longer now\n'), ['b/three.txt']],
    ['a file added in a reported directory', (): void => writeFileSync(at('c/six.txt'), 'six\n'), ['c/six.txt']],
  ])('counts the same summary and writes the same trees as a full walk when %s', async (_what, change, reported) => {
    change();
    const done = { files: 0, bytes: 0 };
    const progress: ProgressSink = {
      ...NO_PROGRESS,
      add(files, bytes) {
        done.files += files;
        done.bytes += bytes;
      },
    };
    const narrowed = await run(first.snapshotId, { changes: journal(...reported.map(at)), progress });
    const full = await run(first.snapshotId);
    const s = narrowed.snapshot.summary;
    expect(walkCounters(s)).toEqual(walkCounters(full.snapshot.summary));
    expect(done).toEqual({ files: s.filesNew + s.filesChanged + s.filesUnmodified, bytes: s.bytesTotal });
    expect(narrowed.snapshot.summary.filesUnmodified).toBeGreaterThanOrEqual(5);
    expect(narrowed.snapshot.tree).toBe(full.snapshot.tree);
  });

  it('walks everything when the parent excluded other paths', async () => {
    writeFileSync(at('a/one.txt'), 'one, second version\n');
    const changes = journal();
    const r = await run(first.snapshotId, { changes, excludes: ['*.tmp'] });
    expect(changes.asked).toEqual([]);
    expect(r.snapshot.summary).toMatchObject({ filesChanged: 1, filesUnmodified: 5 });
    expect(readFileSync(path.join(await restored(r), 'a/one.txt'), 'utf8')).toBe('one, second version\n');
  });

  it('narrows when the parent excluded the same paths', async () => {
    const withExcludes = await run('none', { excludes: ['*.tmp'] });
    writeFileSync(at('a/one.txt'), 'one, second version, not seen\n');
    const r = await run(withExcludes.snapshotId, { changes: { ...journal(), base: withExcludes.snapshotId }, excludes: ['*.tmp'] });
    expect(r.narrowed).toBe(true);
    expect(r.snapshot.summary).toMatchObject({ filesChanged: 0, filesUnmodified: 6 });
  });

  it('walks everything when the parent is not the snapshot the journal counted from', async () => {
    const other = await run('none');
    writeFileSync(at('a/one.txt'), 'one, second version\n');
    const changes = journal();
    const r = await run(other.snapshotId, { changes });
    expect(r.narrowed).toBe(false);
    expect(changes.asked).toEqual([]);
    expect(r.snapshot.summary.filesChanged).toBe(1);
  });

  it('walks everything when the parent could not read some entries', async () => {
    const withErrors = await repo.saveSnapshot({ ...first.snapshot, summary: { ...first.snapshot.summary, errors: 1 } });
    writeFileSync(at('a/one.txt'), 'one, second version\n');
    const changes = { ...journal(), base: withErrors };
    const r = await run(withErrors, { changes });
    expect(r.narrowed).toBe(false);
    expect(r.snapshot.summary.filesChanged).toBe(1);
  });

  it('restores a narrowed snapshot equal to the tree it was taken of', async () => {
    writeFileSync(at('b/sub/four.bin'), randomBytes(70_000));
    writeFileSync(at('b/sub/empty/new.txt'), 'new\n');
    const r = await run(first.snapshotId, { changes: journal(at('b/sub')) });
    expect(r.snapshot.summary).toMatchObject({ filesNew: 1, filesChanged: 1, filesUnmodified: 5 });
    expect(compareTrees(await scanTree(src), await scanTree(await restored(r)))).toEqual([]);
  });

  it('reads a directory whose entries changed, though the journal missed it, when its parent is read', async () => {
    // chokidar emits no event for a new dangling symlink, but its directory's mtime changes
    symlinkSync('nowhere', at('a/deep/dangling'));
    writeFileSync(at('a/one.txt'), 'one, second version\n');
    const r = await run(first.snapshotId, { changes: journal(at('a/one.txt')) });
    expect(r.snapshot.summary).toMatchObject({ filesChanged: 1, filesUnmodified: 5 });
    expect(compareTrees(await scanTree(src), await scanTree(await restored(r)))).toEqual([]);
  });

  it('walks for real when a blob of the parent subtree is no longer stored', async () => {
    // drop the packs holding file contents (and every index); the tree packs are adopted back
    for await (const info of store.list('data')) {
      const pack = await readPackIndex(store, repo.master.dataKey, info.ref.name as never, info.sizeBytes);
      if (pack.entries.some((e) => e.type === BlobType.data)) await store.delete(info.ref);
    }
    for await (const info of store.list('index')) await store.delete(info.ref);
    repo = await openRepository(store, { passphrase: 'pw' }, testEnv());
    const r = await run(first.snapshotId, { changes: journal() });
    expect(r.errors).toEqual([]);
    expect(r.snapshot.summary).toMatchObject({ filesChanged: 6, filesUnmodified: 0 });
    expect(compareTrees(await scanTree(src), await scanTree(await restored(r)))).toEqual([]);
  });
});
