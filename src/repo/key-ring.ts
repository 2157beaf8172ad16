import { CairnError, NotFoundError } from '../core/errors.js';
import { plainHash } from '../core/hash.js';
import type { KeyId, RandomBytes } from '../core/ids.js';
import { type Credential, type KeyFile, type KeyMeta, type MasterKey, parseKeyFile, unwrapMasterKey, wrapMasterKey } from '../core/keys.js';
import type { BlobStore, Op } from './blob-store.js';

/** A key file as listed by `cairn key list`. */
export interface KeyInfo {
  readonly id: KeyId;
  readonly kind: KeyFile['kind'];
  readonly created: string;
  readonly host: string;
  readonly username: string;
}

/** Stores a new key file wrapping `master` under `cred`; keys are named by the hash of their bytes. */
export async function addKey(store: Pick<BlobStore, 'put'>, master: MasterKey, cred: Credential, meta: KeyMeta, random: RandomBytes, opts: Op & { scrypt?: { N: number; r: number; p: number } } = {}): Promise<KeyId> {
  const file = await wrapMasterKey(master, cred, meta, random, opts.scrypt);
  const bytes = Buffer.from(JSON.stringify(file, null, 2));
  const id = plainHash(bytes) as KeyId;
  await store.put({ kind: 'keys', name: id }, bytes, { ...opts, ifNoneMatch: true });
  return id;
}

/** Every key file of the repository. */
export async function listKeys(store: Pick<BlobStore, 'get' | 'list'>, opts: Op = {}): Promise<(KeyInfo & { file: KeyFile })[]> {
  const out: (KeyInfo & { file: KeyFile })[] = [];
  for await (const info of store.list('keys', opts)) {
    const file = parseKeyFile(await store.get(info.ref, undefined, opts));
    out.push({ id: info.ref.name as KeyId, kind: file.kind, created: file.created, host: file.host, username: file.username, file });
  }
  // ISO times in one format sort by code unit; localeCompare would load ICU's collation data
  // (~3 MiB of resident memory) for it
  out.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
  return out;
}

/** Finds the key that `cred` opens and the master key inside it. Password keys are tried only
 *  with a passphrase and key-file keys only with a key file, so a wrong credential costs one
 *  scrypt per key of its kind. Rejects with E_WRONG_PASSWORD when none opens. */
export async function unlock(store: Pick<BlobStore, 'get' | 'list' | 'location'>, cred: Credential, opts: Op = {}): Promise<{ keyId: KeyId; master: MasterKey }> {
  const keys = await listKeys(store, opts);
  if (keys.length === 0) throw new CairnError('E_KEY', `repository at ${store.location} has no keys: it is damaged or was not initialized completely`);
  const kind = 'passphrase' in cred ? 'password' : 'keyfile';
  for (const k of keys) {
    if (k.kind !== kind) continue;
    try {
      return { keyId: k.id, master: await unwrapMasterKey(k.file, cred) };
    } catch (err) {
      if (err instanceof CairnError && err.code === 'E_WRONG_PASSWORD') continue;
      throw err;
    }
  }
  const what = kind === 'password' ? 'password' : 'key file';
  throw new CairnError('E_WRONG_PASSWORD', `wrong ${what}: no ${what} key of ${store.location} opens with it`, {
    hint: keys.some((k) => k.kind !== kind) ? `the repository also has ${kind === 'password' ? 'key-file' : 'password'} keys` : undefined,
  });
}

/** Resolves a key id or unique prefix of one. */
export function resolveKeyId(keys: readonly KeyInfo[], prefix: string): KeyId {
  const matches = keys.filter((k) => k.id.startsWith(prefix));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new NotFoundError(`no key with id ${prefix}`, { code: 'E_KEY' });
  throw new CairnError('E_USAGE', `key id prefix ${prefix} is ambiguous (${matches.length} keys): give more characters`);
}
