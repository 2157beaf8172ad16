/**
 * backend/ holds the implementations of the BlobStore seam (see repo/blob-store.ts): where a
 * repository's objects actually live — a local folder, memory for tests, later Azure Blob and S3.
 * Each one passes the same contract suite (test/backend/blob-store-contract.ts). Nothing below
 * the composition roots (agent/, cli/) imports this folder: the engine and repo depend on the
 * BlobStore interface only, and a root picks and builds the store.
 */
export { LocalBlobStore, createLocalStore } from './local-store.js';
export type { LocalBlobStoreOptions, LocalFileHandle, LocalFs, LocalStats } from './local-store.js';
export { MemoryBlobStore, createMemoryStore } from './memory-store.js';
export type { MemoryBlobStoreOptions } from './memory-store.js';
