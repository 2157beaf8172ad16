import { deriveGearTable } from '../core/chunker.js';
import { CairnError, NotFoundError, wrapError } from '../core/errors.js';
import { IdHasher } from '../core/hash.js';
import { type KeyId, type PackId, type RandomBytes, randomId } from '../core/ids.js';
import type { IndexedPack } from '../core/index-format.js';
import { type Credential, type MasterKey, newMasterKey } from '../core/keys.js';
import { PACK_PREAMBLE_BYTES, PACK_TRAILER_BYTES, headerRange, packKey, packSalt, readPackHeader } from '../core/pack-format.js';
import { type RepoConfig, newRepoConfig, parseRepoConfig } from '../core/repo-config.js';
import type { Snapshot } from '../core/snapshot-format.js';
import type { SnapshotId } from '../core/ids.js';
import type { BlobStore, Op } from './blob-store.js';
import { BlobReader } from './blob-reader.js';
import { BlobWriter } from './blob-writer.js';
import { CompactIndex } from './compact-index.js';
import { loadIndex, writeIndexFile } from './index-files.js';
import { addKey, unlock } from './key-ring.js';
import { defaultSealWorkers } from './seal-pool.js';
import { type SnapshotEntry, listSnapshots, loadSnapshot, saveSnapshot } from './snapshots.js';

/** Age past which a staged file is taken for one a crash left (see BlobStore.sweepStaging). */
const STALE_STAGED_MS = 24 * 60 * 60 * 1000;

/** The world a repository needs from its host: randomness, a clock, who is running it. */
export interface RepoEnv {
  readonly random: RandomBytes;
  readonly now: () => Date;
  readonly host: string;
  readonly username: string;
  /** This process, as recorded in the locks it takes. */
  readonly pid: number;
  /** Whether a process of this host is alive: a lock of this host whose process is gone is stale. */
  readonly isAlive: (pid: number) => boolean;
}

const CONFIG_REF = { kind: 'config', name: 'cairn.json' } as const;

/** An open, unlocked repository: its config, keys, index, and readers and writers of blobs. */
export class Repository {
  readonly store: BlobStore;
  readonly config: RepoConfig;
  readonly master: MasterKey;
  readonly keyId: KeyId;
  readonly hasher: IdHasher;
  readonly gear: Int32Array;
  readonly env: RepoEnv;
  index = new CompactIndex();
  #reader: BlobReader;

  constructor(store: BlobStore, config: RepoConfig, master: MasterKey, keyId: KeyId, env: RepoEnv) {
    this.store = store;
    this.config = config;
    this.master = master;
    this.keyId = keyId;
    this.env = env;
    this.hasher = new IdHasher(master.idKey);
    this.gear = deriveGearTable(master.idKey);
    this.#reader = new BlobReader(store, this.index, master.dataKey, this.hasher);
  }

  /** The reader of blobs through the current index. */
  get reader(): BlobReader {
    return this.#reader;
  }

  /** (Re)loads the index from every index file. */
  async loadIndex(opts: Op = {}): Promise<void> {
    const { index } = await loadIndex(this.store, this.master.dataKey, opts);
    this.index = index;
    this.#reader = new BlobReader(this.store, index, this.master.dataKey, new IdHasher(this.master.idKey));
  }

  /** A writer of new blobs into this repository's index, sealing data blobs on worker threads
   *  (one per core unless `sealWorkers` says otherwise; 0 keeps them on this thread). Its owner
   *  calls flush() then close(), or settle() after a failure. */
  newWriter(opts: { uploadConcurrency?: number; sealWorkers?: number } = {}): BlobWriter {
    return new BlobWriter(this.store, this.index, {
      dataKey: this.master.dataKey,
      compression: this.config.compression,
      packTargetBytes: this.config.pack.targetSizeBytes,
      random: this.env.random,
      sealWorkers: defaultSealWorkers(),
      ...opts,
    });
  }

  /** Every snapshot, oldest first. */
  listSnapshots(opts: Op = {}): Promise<SnapshotEntry[]> {
    return listSnapshots(this.store, this.master.dataKey, opts);
  }

  /** One snapshot. */
  loadSnapshot(id: SnapshotId, opts: Op = {}): Promise<Snapshot> {
    return loadSnapshot(this.store, this.master.dataKey, id, opts);
  }

  /** Stores a snapshot manifest. Its blobs must already be in flushed index files. */
  saveSnapshot(snap: Snapshot, opts: Op = {}): Promise<SnapshotId> {
    return saveSnapshot(this.store, this.master.dataKey, snap, this.env.random, opts);
  }

  /** Indexes packs that no index lists (left by a backup that crashed after uploading them), by
   *  reading their self-describing headers, so their blobs are reused instead of uploaded again.
   *  Packs whose header does not open are left for check and prune. Returns the packs adopted.
   *  Also removes the staged files of packs a crash left unfinished (BlobStore.sweepStaging) once
   *  they are a day old. */
  async adoptOrphanPacks(opts: Op = {}): Promise<{ adopted: number; unreadable: PackId[] }> {
    await this.store.sweepStaging?.(STALE_STAGED_MS, opts);
    const known = new Set<string>(this.index.packIds());
    const packs: IndexedPack[] = [];
    const unreadable: PackId[] = [];
    for await (const info of this.store.list('data', opts)) {
      if (known.has(info.ref.name)) continue;
      const packId = info.ref.name as PackId;
      try {
        packs.push(await readPackIndex(this.store, this.master.dataKey, packId, info.sizeBytes, opts));
      } catch (err) {
        if (err instanceof CairnError && err.code === 'E_INTEGRITY') unreadable.push(packId);
        else throw err;
      }
    }
    if (packs.length > 0) {
      await writeIndexFile(this.store, this.master.dataKey, { packs, supersedes: [] }, this.env.random, opts);
      for (const p of packs) this.index.addPack(p.packId, p.salt, p.entries);
    }
    return { adopted: packs.length, unreadable };
  }
}

/** Reads a pack's own header: what the index would say of it. */
export async function readPackIndex(store: Pick<BlobStore, 'get'>, dataKey: Uint8Array, packId: PackId, sizeBytes: number, opts: Op = {}): Promise<IndexedPack> {
  const ref = { kind: 'data' as const, name: packId };
  if (sizeBytes < PACK_PREAMBLE_BYTES + PACK_TRAILER_BYTES) throw new CairnError('E_INTEGRITY', `pack ${packId.slice(0, 12)} is too short to be a pack`);
  const salt = Uint8Array.from(packSalt(await store.get(ref, { offset: 0, length: PACK_PREAMBLE_BYTES }, opts)));
  const h = headerRange(await store.get(ref, { offset: sizeBytes - PACK_TRAILER_BYTES, length: PACK_TRAILER_BYTES }, opts), sizeBytes);
  const sealed = await store.get(ref, h, opts);
  return { packId, salt, entries: readPackHeader(packKey(dataKey, salt), sealed, h.offset) };
}

/** Options of initRepository. */
export interface InitOptions extends Op {
  readonly config?: Partial<Pick<RepoConfig, 'chunker' | 'compression' | 'pack'>>;
  readonly scrypt?: { N: number; r: number; p: number };
}

/** Creates a repository in an empty store: cairn.json and a first key. Rejects with
 *  E_REPO_EXISTS when the store already holds one. */
export async function initRepository(store: BlobStore, cred: Credential, env: RepoEnv, opts: InitOptions = {}): Promise<Repository> {
  const exists = await store.stat(CONFIG_REF, opts).then(() => true, (err: unknown) => {
    if (err instanceof NotFoundError) return false;
    throw wrapError(`look for a repository at ${store.location}`, err);
  });
  if (exists) throw new CairnError('E_REPO_EXISTS', `a repository already exists at ${store.location}`, { hint: 'use it as it is, or choose another location' });
  const config = newRepoConfig(randomId(env.random), env.now(), opts.config);
  const master = newMasterKey(env.random);
  const keyId = await addKey(store, master, cred, { created: env.now(), host: env.host, username: env.username }, env.random, opts);
  try {
    await store.put(CONFIG_REF, Buffer.from(JSON.stringify(config, null, 2) + '\n'), { ...opts, ifNoneMatch: true });
  } catch (err) {
    // our key wraps a master key that no repository uses: it must not stay for unlock to find
    await store.delete({ kind: 'keys', name: keyId }).catch(() => undefined);
    if (err instanceof CairnError && err.code === 'E_BLOB_EXISTS') {
      throw new CairnError('E_REPO_EXISTS', `a repository was created at ${store.location} at the same time`, { cause: err, hint: 'use it as it is' });
    }
    throw wrapError(`create repository at ${store.location}`, err);
  }
  return new Repository(store, config, master, keyId, env);
}

/** Opens and unlocks a repository (the index is not loaded: call loadIndex). Rejects with
 *  E_REPO_NOT_FOUND when there is none and E_WRONG_PASSWORD when `cred` opens no key. */
export async function openRepository(store: BlobStore, cred: Credential, env: RepoEnv, opts: Op = {}): Promise<Repository> {
  let raw: Uint8Array;
  try {
    raw = await store.get(CONFIG_REF, undefined, opts);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new CairnError('E_REPO_NOT_FOUND', `no repository at ${store.location}`, { cause: err, hint: 'check the path, or create one with cairn init' });
    }
    throw wrapError(`open repository at ${store.location}`, err);
  }
  const config = parseRepoConfig(raw);
  const { keyId, master } = await unlock(store, cred, opts);
  return new Repository(store, config, master, keyId, env);
}
