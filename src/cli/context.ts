import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createLocalStore } from '../backend/local-store.js';
import { CairnError } from '../core/errors.js';
import type { Credential } from '../core/keys.js';
import type { BlobStore } from '../repo/blob-store.js';
import { createKeyFile, hostEnv, isAlive } from '../agent/host-env.js';
import { type Repository, openRepository } from '../repo/repository.js';

export { createKeyFile, hostEnv, isAlive };
export { lockRepo, withLock } from '../repo/locks.js';

/** Options every command shares. */
export interface GlobalOptions {
  readonly repo?: string;
  readonly passwordFile?: string;
  readonly keyFile?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** The store of the repository named by --repo or CAIRN_REPO. */
export function storeFor(g: GlobalOptions): BlobStore {
  const where = g.repo ?? process.env.CAIRN_REPO;
  if (!where) throw new CairnError('E_USAGE', 'no repository given', { hint: 'pass --repo PATH or set CAIRN_REPO' });
  if (/^[a-z][a-z0-9+]*:\/\//.test(where)) throw new CairnError('E_USAGE', `repository ${where}: only local folders are supported by this version`, { hint: 'give a folder path' });
  return createLocalStore(path.resolve(where.replace(/^local:/, '')));
}

/** The credential from --key-file / CAIRN_KEY_FILE, --password-file / CAIRN_PASSWORD_FILE, or
 *  CAIRN_PASSWORD, in that order. */
export async function credentialFor(g: GlobalOptions): Promise<Credential> {
  const keyFile = g.keyFile ?? process.env.CAIRN_KEY_FILE;
  if (keyFile) return { keyFileBytes: await readSecretFile(keyFile, 'key file') };
  const pwFile = g.passwordFile ?? process.env.CAIRN_PASSWORD_FILE;
  if (pwFile) return { passphrase: (await readSecretFile(pwFile, 'password file')).toString('utf8').replace(/\r?\n$/, '') };
  const pw = process.env.CAIRN_PASSWORD;
  if (pw !== undefined && pw !== '') return { passphrase: pw };
  throw new CairnError('E_USAGE', 'no password or key file given', { hint: 'set CAIRN_PASSWORD, or pass --password-file FILE or --key-file FILE' });
}

async function readSecretFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CairnError('E_USAGE', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Opens and unlocks the repository; with `index`, loads its index too. */
export async function openRepo(g: GlobalOptions, opts: { index?: boolean; signal?: AbortSignal } = {}): Promise<Repository> {
  const repo = await openRepository(storeFor(g), await credentialFor(g), hostEnv(), opts);
  if (opts.index) await repo.loadIndex(opts);
  return repo;
}

