import { hkdf, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { CairnError, IntegrityError } from './errors.js';
import type { RandomBytes } from './ids.js';
import { open, seal } from './seal.js';

const scryptAsync = promisify(scrypt) as (pw: Uint8Array | string, salt: Uint8Array, len: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;
const hkdfAsync = promisify(hkdf);

/** The repository's secrets, random at init and never changed: `dataKey` seals everything,
 *  `idKey` keys blob ids and the chunker's gear table. */
export interface MasterKey {
  readonly dataKey: Uint8Array;
  readonly idKey: Uint8Array;
}

/** scrypt cost for passphrases: N=2^15, r=8 (32 MiB, ~100 ms here): restic's order of cost. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

/** scrypt cost parameters. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** How a key file's key-encryption key is derived. */
export type Kdf =
  | { readonly name: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string }
  | { readonly name: 'hkdf-sha256'; readonly salt: string };

/** A key file (keys/<id>, JSON): the master key wrapped by a KEK from a passphrase or key file. */
export interface KeyFile {
  readonly version: 1;
  readonly kind: 'password' | 'keyfile';
  readonly kdf: Kdf;
  readonly created: string;
  readonly host: string;
  readonly username: string;
  /** base64 of seal(KEK, master key JSON). */
  readonly data: string;
}

/** What unlocks a repository: a passphrase, or the bytes of a key file (at least 32 of them). */
export type Credential = { readonly passphrase: string } | { readonly keyFileBytes: Uint8Array };

/** Who and when, recorded in a new key file. */
export interface KeyMeta {
  readonly created: Date;
  readonly host: string;
  readonly username: string;
}

const WRAP_AAD = Buffer.from('cairn master key v1');

/** A fresh random master key. */
export function newMasterKey(random: RandomBytes): MasterKey {
  return { dataKey: random(32), idKey: random(32) };
}

async function deriveKek(cred: Credential, kdf: Kdf): Promise<Buffer> {
  const salt = Buffer.from(kdf.salt, 'base64');
  if ('passphrase' in cred) {
    if (kdf.name !== 'scrypt') throw new CairnError('E_WRONG_PASSWORD', 'this key is unlocked by a key file, not a passphrase');
    return scryptAsync(cred.passphrase.normalize('NFC'), salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r });
  }
  if (kdf.name !== 'hkdf-sha256') throw new CairnError('E_WRONG_PASSWORD', 'this key is unlocked by a passphrase, not a key file');
  if (cred.keyFileBytes.length < 32) throw new CairnError('E_KEY', `a key file must hold at least 32 bytes of secret, this one has ${cred.keyFileBytes.length}`);
  return Buffer.from(await hkdfAsync('sha256', cred.keyFileBytes, salt, 'cairn key file v1', 32));
}

/** Wraps `master` under `cred`, returning the key file to store. */
export async function wrapMasterKey(master: MasterKey, cred: Credential, meta: KeyMeta, random: RandomBytes, scryptParams: ScryptParams = DEFAULT_SCRYPT): Promise<KeyFile> {
  const salt = Buffer.from(random(16)).toString('base64');
  const kdf: Kdf = 'passphrase' in cred ? { name: 'scrypt', ...scryptParams, salt } : { name: 'hkdf-sha256', salt };
  const kek = await deriveKek(cred, kdf);
  const plain = Buffer.from(JSON.stringify({ dataKey: Buffer.from(master.dataKey).toString('base64'), idKey: Buffer.from(master.idKey).toString('base64') }));
  return {
    version: 1,
    kind: 'passphrase' in cred ? 'password' : 'keyfile',
    kdf,
    created: meta.created.toISOString(),
    host: meta.host,
    username: meta.username,
    data: seal(kek, plain, random, WRAP_AAD).toString('base64'),
  };
}

/** Unwraps the master key from `file` with `cred`; rejects with code E_WRONG_PASSWORD when the
 *  credential does not open this key file. */
export async function unwrapMasterKey(file: KeyFile, cred: Credential): Promise<MasterKey> {
  const kek = await deriveKek(cred, file.kdf);
  let plain: Buffer;
  try {
    plain = open(kek, Buffer.from(file.data, 'base64'), WRAP_AAD);
  } catch (err) {
    if (err instanceof IntegrityError) throw new CairnError('E_WRONG_PASSWORD', 'wrong password or key file', { cause: err });
    throw err;
  }
  const json = JSON.parse(plain.toString('utf8')) as { dataKey: string; idKey: string };
  return { dataKey: Buffer.from(json.dataKey, 'base64'), idKey: Buffer.from(json.idKey, 'base64') };
}

/** Parses and checks a key file's JSON. */
export function parseKeyFile(bytes: Uint8Array): KeyFile {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new IntegrityError('key file is not valid JSON', { cause: err });
  }
  if (typeof v !== 'object' || v === null) throw new IntegrityError('key file is not a JSON object');
  const k = v as Partial<KeyFile>;
  if (k.version !== 1 || typeof k.data !== 'string' || !k.kdf || (k.kind !== 'password' && k.kind !== 'keyfile')) {
    throw new IntegrityError('key file has an unknown layout or version');
  }
  return k as KeyFile;
}
