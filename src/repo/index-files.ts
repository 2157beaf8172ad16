import { wrapError } from '../core/errors.js';
import type { IndexId, RandomBytes } from '../core/ids.js';
import { type IndexFileContent, type IndexFileInput, type IndexFileTables, decodeIndexFile, decodeIndexTables, encodeIndexFile } from '../core/index-format.js';
import { mapBounded } from '../core/bounded.js';
import type { BlobStore, Op } from './blob-store.js';
import { CompactIndex } from './compact-index.js';
import { getSealedFile, putSealedFile } from './sealed-files.js';

/** Index files read at once while loading: enough to hide a blob store's latency. */
const LOAD_CONCURRENCY = 8;

/** Seals and stores one index file; its name is the hash of its bytes. */
export async function writeIndexFile(store: Pick<BlobStore, 'put'>, dataKey: Uint8Array, content: IndexFileInput, random: RandomBytes, opts: Op = {}): Promise<IndexId> {
  return (await putSealedFile(store, 'index', 'index', dataKey, encodeIndexFile(content), random, opts)) as IndexId;
}

/** Reads and opens one index file. */
export async function readIndexFile(store: Pick<BlobStore, 'get' | 'location'>, dataKey: Uint8Array, id: IndexId, opts: Op = {}): Promise<IndexFileContent> {
  return readIndexWith(decodeIndexFile, store, dataKey, id, opts);
}

/** Reads and opens one index file, its entries left as records (see decodeIndexTables). */
export async function readIndexTables(store: Pick<BlobStore, 'get' | 'location'>, dataKey: Uint8Array, id: IndexId, opts: Op = {}): Promise<IndexFileTables> {
  return readIndexWith(decodeIndexTables, store, dataKey, id, opts);
}

async function readIndexWith<T>(decode: (plain: Uint8Array) => T, store: Pick<BlobStore, 'get' | 'location'>, dataKey: Uint8Array, id: IndexId, opts: Op): Promise<T> {
  try {
    return decode(await getSealedFile(store, 'index', 'index', dataKey, id, opts));
  } catch (err) {
    throw wrapError(`load index ${id.slice(0, 12)} from ${store.location}`, err);
  }
}

/** The merged in-memory index of every index file, skipping those superseded by another. */
export async function loadIndex(store: Pick<BlobStore, 'get' | 'list' | 'location'>, dataKey: Uint8Array, opts: Op = {}): Promise<{ index: CompactIndex; files: IndexId[] }> {
  const ids: IndexId[] = [];
  for await (const info of store.list('index', opts)) ids.push(info.ref.name as IndexId);
  const contents = await mapBounded(ids, LOAD_CONCURRENCY, (id) => readIndexTables(store, dataKey, id, opts));
  const superseded = new Set<string>();
  for (const c of contents) for (const s of c.supersedes) superseded.add(s);
  const index = new CompactIndex();
  let blobs = 0;
  contents.forEach((c, i) => {
    if (!superseded.has(ids[i]!)) for (const p of c.packs) blobs += p.count;
  });
  index.reserve(blobs);
  const files: IndexId[] = [];
  contents.forEach((c, i) => {
    if (superseded.has(ids[i]!)) return;
    files.push(ids[i]!);
    for (const p of c.packs) index.addPackTable(p.packId, p.salt, p.table, p.count);
  });
  return { index, files };
}
