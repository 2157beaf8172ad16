import { mapBounded } from '../core/bounded.js';
import { CairnError } from '../core/errors.js';
import { plainHash } from '../core/hash.js';
import { type BlobId, type PackId, type SnapshotId, fromHex } from '../core/ids.js';
import { BlobType, headerRange, packKey, packSalt, readPackHeader, PACK_TRAILER_BYTES } from '../core/pack-format.js';
import { decodeTree } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { Repository } from '../repo/repository.js';
import type { BlobLocation } from '../repo/compact-index.js';
import type { SnapshotEntry } from '../repo/snapshots.js';
import type { ProgressSink } from './progress.js';

/** What check should read. */
export interface CheckOptions extends Op {
  /** Read and authenticate pack contents: all, or the subset n of t (1-based) by pack id. */
  readonly readData?: boolean | { readonly n: number; readonly t: number };
  readonly progress?: ProgressSink;
}

/** One problem found, with the snapshots and files it affects when known. */
export interface CheckProblem {
  readonly kind: 'missing-pack' | 'damaged-pack' | 'missing-blob' | 'damaged-blob' | 'damaged-tree' | 'damaged-snapshot' | 'unindexed-pack' | 'inconsistent-file';
  readonly message: string;
  /** The blob the problem is about, when it is about one. */
  readonly blob?: string;
  readonly affected?: readonly { snapshot: SnapshotId; path: string }[];
}

/** A check's findings. `errors` make the repository unhealthy; `warnings` do not. */
export interface CheckReport {
  readonly snapshots: number;
  readonly packs: number;
  readonly blobs: number;
  readonly packsRead: number;
  readonly errors: CheckProblem[];
  readonly warnings: CheckProblem[];
}

/** Verifies the repository: every index entry is in an existing pack, every snapshot's trees
 *  load and every blob they name is indexed; with readData, every pack (of the subset) hashes to
 *  its name and every blob in it authenticates and hashes to its id. Damaged or missing blobs are
 *  traced to the snapshots and files that use them. */
export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const errors: CheckProblem[] = [];
  const warnings: CheckProblem[] = [];
  await repo.loadIndex(opts);
  const sizes = new Map<string, number>();
  for await (const info of repo.store.list('data', opts)) sizes.set(info.ref.name, info.sizeBytes);
  const indexed = new Set<string>(repo.index.packIds());
  for (const p of indexed) if (!sizes.has(p)) errors.push({ kind: 'missing-pack', message: `pack ${p} is in the index but not in the repository` });
  for (const p of sizes.keys()) if (!indexed.has(p)) warnings.push({ kind: 'unindexed-pack', message: `pack ${p} is in no index (left by an interrupted backup: the next backup adopts it, prune removes it)` });
  const bad = new Set<string>();
  for (const e of repo.index.entries()) if (!sizes.has(e.packId)) bad.add(e.id);
  let packsRead = 0;
  if (opts.readData) {
    const subset = opts.readData === true ? { n: 1, t: 1 } : opts.readData;
    const chosen = new Set([...indexed].filter((p) => sizes.has(p) && inSubset(p, subset)));
    const byPack = new Map<string, BlobEntry[]>();
    for (const e of repo.index.entries()) {
      if (!chosen.has(e.packId)) continue;
      const list = byPack.get(e.packId);
      if (list) list.push(e);
      else byPack.set(e.packId, [e]);
    }
    await mapBounded(chosen, 2, async (packId) => {
      const problems = await readPack(repo, packId as PackId, sizes.get(packId)!, byPack.get(packId) ?? [], bad, opts);
      errors.push(...problems);
      packsRead++;
      opts.progress?.add(1, sizes.get(packId)!);
    });
  }
  const snaps = await repo.listSnapshots(opts).catch((err: unknown) => {
    errors.push({ kind: 'damaged-snapshot', message: `snapshots cannot be listed: ${(err as Error).message}` });
    return [] as SnapshotEntry[];
  });
  await traceSnapshots(repo, snaps, bad, errors, opts);
  return { snapshots: snaps.length, packs: indexed.size, blobs: repo.index.size, packsRead, errors, warnings };
}

function inSubset(packId: string, s: { n: number; t: number }): boolean {
  if (!(Number.isInteger(s.n) && Number.isInteger(s.t) && s.t >= 1 && s.n >= 1 && s.n <= s.t)) {
    throw new CairnError('E_USAGE', `read-data subset ${s.n}/${s.t} is invalid: use n/t with 1 ≤ n ≤ t`);
  }
  return parseInt(packId.slice(0, 8), 16) % s.t === s.n - 1;
}

/** Reads one whole pack and verifies it; adds the ids of blobs found damaged to `bad`. */
type BlobEntry = { id: BlobId } & BlobLocation;

async function readPack(repo: Repository, packId: PackId, size: number, indexedHere: readonly BlobEntry[], bad: Set<string>, opts: Op): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  let bytes: Uint8Array;
  try {
    bytes = await repo.store.get({ kind: 'data', name: packId }, undefined, opts);
  } catch (err) {
    for (const e of indexedHere) bad.add(e.id);
    return [{ kind: 'missing-pack', message: `pack ${packId} cannot be read: ${(err as Error).message}` }];
  }
  if (plainHash(bytes) !== packId) problems.push({ kind: 'damaged-pack', message: `pack ${packId} does not hash to its name: its bytes changed after it was written` });
  try {
    const salt = packSalt(bytes);
    const h = headerRange(bytes.subarray(size - PACK_TRAILER_BYTES), size);
    readPackHeader(packKey(repo.master.dataKey, salt), bytes.subarray(h.offset, h.offset + h.length), h.offset);
  } catch (err) {
    problems.push({ kind: 'damaged-pack', message: `pack ${packId} header: ${(err as Error).message}` });
  }
  for (const e of indexedHere) {
    try {
      await repo.reader.openBlob(fromHex(e.id), e, bytes.subarray(e.offset, e.offset + e.length));
    } catch (err) {
      bad.add(e.id);
      problems.push({ kind: 'damaged-blob', blob: e.id, message: `${e.type === BlobType.tree ? 'tree' : 'data'} blob ${e.id} in pack ${packId}: ${(err as Error).message}` });
    }
  }
  return problems;
}

/** Walks every snapshot's trees; reports missing blobs and attaches affected files to problems
 *  about blobs in `bad`. Shared subtrees are visited once per snapshot. */
async function traceSnapshots(repo: Repository, snaps: readonly SnapshotEntry[], bad: Set<string>, errors: CheckProblem[], opts: Op): Promise<void> {
  const affected = new Map<string, { snapshot: SnapshotId; path: string }[]>();
  const note = (blob: string, snapshot: SnapshotId, path: string): void => {
    const list = affected.get(blob) ?? [];
    list.push({ snapshot, path });
    affected.set(blob, list);
  };
  for (const { id: snapId, snapshot } of snaps) {
    const seen = new Set<string>();
    const visit = async (treeId: BlobId, prefix: string): Promise<void> => {
      if (seen.has(treeId)) return;
      seen.add(treeId);
      if (!repo.index.has(fromHex(treeId))) {
        errors.push({ kind: 'missing-blob', blob: treeId, message: `snapshot ${snapId.slice(0, 12)}: tree of ${prefix || '/'} (${treeId.slice(0, 12)}) is missing` });
        return;
      }
      let nodes;
      try {
        nodes = decodeTree(await repo.reader.load(BlobType.tree, treeId, opts)).nodes;
      } catch (err) {
        // reported already only when --read-data read its pack and found it damaged
        const reported = bad.has(treeId) && errors.some((e) => e.blob === treeId);
        bad.add(treeId);
        note(treeId, snapId, prefix || '/');
        if (!reported) errors.push({ kind: 'damaged-tree', blob: treeId, message: `snapshot ${snapId.slice(0, 12)}: tree of ${prefix || '/'} (${treeId.slice(0, 12)}) cannot be read: ${(err as Error).message}; everything under it is unchecked` });
        return;
      }
      for (const n of nodes) {
        const p = `${prefix}/${n.name}`;
        if (n.type === 'dir' && n.subtree) await visit(n.subtree, p);
        // the file's length as its content gives it (holes and blobs), as restore adds it up
        let length = 0;
        let lengthKnown = true;
        for (const c of n.content ?? []) {
          if (typeof c === 'number') {
            length += c;
            continue;
          }
          const row = repo.index.rowOf(fromHex(c));
          if (row >= 0) length += repo.index.rawLengthOf(row);
          else lengthKnown = false;
          if (bad.has(c)) note(c, snapId, p);
          else if (row < 0) {
            bad.add(c);
            note(c, snapId, p);
            errors.push({ kind: 'missing-blob', blob: c, message: `data blob ${c} is in no index` });
          }
        }
        if (n.type === 'file' && lengthKnown && length !== n.size) {
          errors.push({
            kind: 'inconsistent-file',
            message: `snapshot ${snapId.slice(0, 12)}: ${p}: its content adds up to ${length} bytes, its entry says ${n.size}; restore skips it`,
            affected: [{ snapshot: snapId, path: p }],
          });
        }
      }
    };
    await visit(snapshot.tree, '');
  }
  // blobs lost with a missing pack have no problem of their own yet: one each, to trace them
  const withProblem = new Set(errors.map((e) => e.blob).filter((b) => b !== undefined));
  for (const blob of affected.keys()) {
    if (withProblem.has(blob)) continue;
    const loc = repo.index.lookup(fromHex(blob));
    errors.push({ kind: 'missing-blob', blob, message: `blob ${blob} is in pack ${loc?.packId ?? '(unknown)'}, which is missing or unreadable` });
  }
  for (let i = 0; i < errors.length; i++) {
    const e = errors[i]!;
    const list = e.blob !== undefined ? (affected.get(e.blob) ?? []) : [];
    if (list.length > 0) errors[i] = { ...e, affected: dedupe(list) };
  }
}

function dedupe(list: { snapshot: SnapshotId; path: string }[]): { snapshot: SnapshotId; path: string }[] {
  const seen = new Set<string>();
  return list.filter((a) => {
    const k = `${a.snapshot}\0${a.path}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

