import { CairnError, NotFoundError, wrapError } from '../core/errors.js';
import type { RandomBytes, SnapshotId } from '../core/ids.js';
import { type Snapshot, decodeSnapshot, encodeSnapshot } from '../core/snapshot-format.js';
import { mapBounded } from '../core/bounded.js';
import type { BlobStore, Op } from './blob-store.js';
import { getSealedFile, putSealedFile } from './sealed-files.js';

/** A snapshot with its id. */
export interface SnapshotEntry {
  readonly id: SnapshotId;
  readonly snapshot: Snapshot;
}

/** Seals and stores a snapshot manifest, named by the hash of its bytes. */
export async function saveSnapshot(store: Pick<BlobStore, 'put'>, dataKey: Uint8Array, snap: Snapshot, random: RandomBytes, opts: Op = {}): Promise<SnapshotId> {
  return (await putSealedFile(store, 'snapshots', 'snapshot', dataKey, encodeSnapshot(snap), random, opts)) as SnapshotId;
}

/** Loads one snapshot manifest. */
export async function loadSnapshot(store: Pick<BlobStore, 'get' | 'location'>, dataKey: Uint8Array, id: SnapshotId, opts: Op = {}): Promise<Snapshot> {
  try {
    return decodeSnapshot(await getSealedFile(store, 'snapshots', 'snapshot', dataKey, id, opts));
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError(`no snapshot ${id}`, { code: 'E_SNAPSHOT_NOT_FOUND', cause: err });
    throw wrapError(`load snapshot ${id.slice(0, 12)}`, err);
  }
}

/** Every snapshot, oldest first. */
export async function listSnapshots(store: Pick<BlobStore, 'get' | 'list' | 'location'>, dataKey: Uint8Array, opts: Op = {}): Promise<SnapshotEntry[]> {
  const ids: SnapshotId[] = [];
  for await (const info of store.list('snapshots', opts)) ids.push(info.ref.name as SnapshotId);
  const snaps = await mapBounded(ids, 8, async (id) => ({ id, snapshot: await loadSnapshot(store, dataKey, id, opts) }));
  // ISO times in one format, then hex ids: by code unit (localeCompare would load ICU's
  // collation data, ~3 MiB of resident memory, for every command that lists snapshots)
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  return snaps.sort((a, b) => cmp(a.snapshot.time, b.snapshot.time) || cmp(a.id, b.id));
}

/** Which snapshots `latest` and parent selection consider. */
export interface SnapshotFilter {
  readonly host?: string;
  readonly paths?: readonly string[];
  readonly tags?: readonly string[];
  readonly source?: string;
}

/** True when `s` matches every field given in `f` (paths: the same set). */
export function matchesFilter(s: Snapshot, f: SnapshotFilter): boolean {
  if (f.host !== undefined && s.host !== f.host) return false;
  if (f.source !== undefined && s.source.name !== f.source) return false;
  if (f.tags && !f.tags.every((t) => s.tags.includes(t))) return false;
  if (f.paths) {
    const a = [...f.paths].sort();
    const b = [...s.paths].sort();
    if (a.length !== b.length || a.some((p, i) => p !== b[i])) return false;
  }
  return true;
}

/** Resolves "latest" (newest matching `filter`) or an id or unique id prefix (≥ 4 hex). */
export function resolveSnapshot(all: readonly SnapshotEntry[], ref: string, filter: SnapshotFilter = {}): SnapshotEntry {
  if (ref === 'latest') {
    const matching = all.filter((e) => matchesFilter(e.snapshot, filter));
    const last = matching[matching.length - 1];
    if (!last) throw new NotFoundError('no snapshot matches: the repository has none yet, or the filter excludes them all', { code: 'E_SNAPSHOT_NOT_FOUND' });
    return last;
  }
  if (!/^[0-9a-f]{4,64}$/.test(ref)) throw new CairnError('E_USAGE', `"${ref}" is not a snapshot id: give "latest" or at least 4 hex characters of an id`);
  const matches = all.filter((e) => e.id.startsWith(ref));
  if (matches.length === 0) throw new NotFoundError(`no snapshot with id ${ref}`, { code: 'E_SNAPSHOT_NOT_FOUND' });
  if (matches.length > 1) throw new CairnError('E_USAGE', `snapshot id prefix ${ref} is ambiguous (${matches.length} snapshots): give more characters`);
  return matches[0]!;
}
