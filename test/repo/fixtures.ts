import { randomBytes } from 'node:crypto';
import { type MemoryBlobStore, createMemoryStore } from '../../src/backend/memory-store.js';
import type { Credential } from '../../src/core/keys.js';
import type { BlobKind, BlobStore } from '../../src/repo/blob-store.js';
import { type InitOptions, type RepoEnv, type Repository, initRepository } from '../../src/repo/repository.js';

/** scrypt at N=2^10: fast enough for tests, the same code path as the default. */
export const SMALL_SCRYPT = { N: 1024, r: 8, p: 1 };

/** The smallest pack target cairn.json allows, so a few MiB of blobs span several packs. */
export const SMALL_PACK_BYTES = 1024 * 1024;

/** A fixed clock and identity with secure randomness (`random` may be replaced for goldens). */
export function testEnv(over: Partial<RepoEnv> = {}): RepoEnv {
  return { random: (n) => randomBytes(n), now: () => new Date('2026-05-06T07:08:09.000Z'), host: 'h', username: 'u', pid: 4242, isAlive: () => true, ...over };
}

/** A new repository in a fresh memory store, with small scrypt cost and 1 MiB packs. */
export async function newTestRepo(
  opts: { store?: MemoryBlobStore; cred?: Credential; env?: RepoEnv; init?: InitOptions } = {},
): Promise<{ repo: Repository; store: MemoryBlobStore; env: RepoEnv }> {
  const store = opts.store ?? createMemoryStore();
  const env = opts.env ?? testEnv();
  const repo = await initRepository(store, opts.cred ?? { passphrase: 'pw' }, env, { scrypt: SMALL_SCRYPT, config: { pack: { targetSizeBytes: SMALL_PACK_BYTES } }, ...opts.init });
  return { repo, store, env };
}

/** The names stored under `kind`, sorted. */
export async function namesOf(store: Pick<BlobStore, 'list'>, kind: BlobKind): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(kind)) out.push(info.ref.name);
  return out.sort();
}
