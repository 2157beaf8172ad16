/**
 * repo: the repository of format v1 over the BlobStore seam. Packs of sealed blobs, immutable
 * index files and the compact in-memory index, snapshot manifests, key files that wrap the
 * master key, and locks. Writing order is pack → index → snapshot, so a crash leaves only
 * unreferenced packs, which the next backup adopts and prune removes.
 */
export * from './blob-store.js';
export * from './compact-index.js';
export * from './pack-writer.js';
export * from './blob-writer.js';
export * from './blob-reader.js';
export * from './index-files.js';
export * from './key-ring.js';
export * from './snapshots.js';
export * from './sealed-files.js';
export * from './locks.js';
export * from './repository.js';
