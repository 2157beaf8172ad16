import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/backend/memory-store.js';
import { plainHash } from '../../src/core/hash.js';
import type { BlobId, SnapshotId } from '../../src/core/ids.js';
import type { Snapshot } from '../../src/core/snapshot-format.js';
import { type SnapshotEntry, listSnapshots, loadSnapshot, matchesFilter, resolveSnapshot, saveSnapshot } from '../../src/repo/snapshots.js';
import { expectCode, expectThrowCode } from '../core/fixtures.js';
import { namesOf } from './fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x81);
const random = (n: number): Uint8Array => randomBytes(n);

function snap(time: string, over: Partial<Snapshot> = {}): Snapshot {
  return {
    version: 1,
    time,
    host: 'h',
    username: 'u',
    source: { name: 'home', kind: 'folder' },
    paths: ['/home'],
    excludes: [],
    tags: [],
    tree: 'ab'.repeat(32) as BlobId,
    summary: { filesNew: 1, filesChanged: 0, filesUnmodified: 0, dirs: 1, errors: 0, bytesRead: 10, bytesTotal: 10, bytesAdded: 10, blobsAdded: 1, durationMs: 5 },
    program: 'cairn test',
    ...over,
  };
}

const entry = (id: string, s: Snapshot): SnapshotEntry => ({ id: id as SnapshotId, snapshot: s });

describe('saveSnapshot / loadSnapshot / listSnapshots', () => {
  it('stores a sealed manifest named by the hash of its bytes, and loads it back', async () => {
    const store = createMemoryStore();
    const s = snap('2026-01-01T00:00:00.000Z', { tags: ['t'], parent: 'cd'.repeat(32) as SnapshotId });
    const id = await saveSnapshot(store, DATA_KEY, s, random);
    expect(await namesOf(store, 'snapshots')).toEqual([id]);
    const file = await store.get({ kind: 'snapshots', name: id });
    expect(plainHash(file)).toBe(id);
    expect(Buffer.from(file.subarray(0, 4)).toString('latin1')).toBe('CRNF');
    expect(Buffer.from(file).includes(Buffer.from('"host"'))).toBe(false);
    expect(await loadSnapshot(store, DATA_KEY, id)).toEqual(s);
  });

  it('lists every snapshot oldest first', async () => {
    const store = createMemoryStore();
    const times = ['2026-03-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z'];
    const ids = new Map<string, SnapshotId>();
    for (const t of times) ids.set(t, await saveSnapshot(store, DATA_KEY, snap(t), random));
    const listed = await listSnapshots(store, DATA_KEY);
    expect(listed.map((e) => e.snapshot.time)).toEqual([...times].sort());
    expect(listed.map((e) => e.id)).toEqual([...times].sort().map((t) => ids.get(t)));
  });

  it('rejects a missing snapshot with E_SNAPSHOT_NOT_FOUND', async () => {
    await expectCode(loadSnapshot(createMemoryStore(), DATA_KEY, 'ff'.repeat(32) as SnapshotId), 'E_SNAPSHOT_NOT_FOUND');
  });

  it('rejects a manifest whose bytes do not hash to its name with E_INTEGRITY', async () => {
    const store = createMemoryStore();
    const id = await saveSnapshot(store, DATA_KEY, snap('2026-01-01T00:00:00.000Z'), random);
    const file = await store.get({ kind: 'snapshots', name: id });
    file[file.length - 1]! ^= 1;
    await store.put({ kind: 'snapshots', name: id }, file);
    await expectCode(loadSnapshot(store, DATA_KEY, id), 'E_INTEGRITY');
  });

  it('rejects a manifest sealed under another key, or sealed as another kind, with E_INTEGRITY', async () => {
    const store = createMemoryStore();
    const id = await saveSnapshot(store, DATA_KEY, snap('2026-01-01T00:00:00.000Z'), random);
    await expectCode(loadSnapshot(store, new Uint8Array(32).fill(0x82), id), 'E_INTEGRITY');
    await expectCode(listSnapshots(store, new Uint8Array(32).fill(0x82)), 'E_INTEGRITY');
  });
});

describe('resolveSnapshot', () => {
  const all = [
    entry('aaaa1111' + '0'.repeat(56), snap('2026-01-01T00:00:00.000Z', { host: 'a', tags: ['x'] })),
    entry('aaaa2222' + '0'.repeat(56), snap('2026-01-02T00:00:00.000Z', { host: 'b' })),
    entry('bbbb3333' + '0'.repeat(56), snap('2026-01-03T00:00:00.000Z', { host: 'a', paths: ['/etc', '/home'] })),
  ];

  it.each([
    ['latest', {}, 'bbbb3333'],
    ['latest', { host: 'b' }, 'aaaa2222'],
    ['latest', { host: 'a', tags: ['x'] }, 'aaaa1111'],
    ['latest', { paths: ['/home', '/etc'] }, 'bbbb3333'],
    ['latest', { paths: ['/home'] }, 'aaaa2222'],
    ['bbbb', {}, 'bbbb3333'],
    ['aaaa1', {}, 'aaaa1111'],
    ['aaaa2222' + '0'.repeat(56), {}, 'aaaa2222'],
  ])('resolves %s with filter %o to %s…', (ref, filter, prefix) => {
    expect(resolveSnapshot(all, ref, filter).id.startsWith(prefix)).toBe(true);
  });

  it.each([
    ['an ambiguous prefix', 'aaaa', 'E_USAGE'],
    ['a prefix of 3 hex', 'bbb', 'E_USAGE'],
    ['upper-case hex', 'BBBB', 'E_USAGE'],
    ['a name', 'yesterday', 'E_USAGE'],
    ['an unknown prefix', 'cccc', 'E_SNAPSHOT_NOT_FOUND'],
  ] as const)('rejects %s', (_label, ref, code) => {
    expectThrowCode(() => resolveSnapshot(all, ref), code);
  });

  it('rejects latest when nothing matches with E_SNAPSHOT_NOT_FOUND', () => {
    expectThrowCode(() => resolveSnapshot([], 'latest'), 'E_SNAPSHOT_NOT_FOUND');
    expectThrowCode(() => resolveSnapshot(all, 'latest', { host: 'zz' }), 'E_SNAPSHOT_NOT_FOUND');
  });
});

describe('matchesFilter', () => {
  const s = snap('2026-01-01T00:00:00.000Z', { host: 'web', tags: ['a', 'b'], paths: ['/b', '/a'], source: { name: 'site', kind: 'folder' } });

  it.each([
    [{}, true],
    [{ host: 'web' }, true],
    [{ host: 'db' }, false],
    [{ source: 'site' }, true],
    [{ source: 'other' }, false],
    [{ tags: ['a'] }, true],
    [{ tags: ['a', 'b'] }, true],
    [{ tags: ['c'] }, false],
    [{ paths: ['/a', '/b'] }, true],
    [{ paths: ['/a'] }, false],
    [{ paths: ['/a', '/b', '/c'] }, false],
  ])('matches %o: %s', (filter, expected) => {
    expect(matchesFilter(s, filter)).toBe(expected);
  });
});
