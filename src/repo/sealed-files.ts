import { encode } from '../core/codec.js';
import { IntegrityError } from '../core/errors.js';
import { plainHash } from '../core/hash.js';
import type { RandomBytes } from '../core/ids.js';
import { type SealedFileKind, openFile, sealFile } from '../core/sealed-file.js';
import type { BlobKind, BlobStore, Op } from './blob-store.js';

/** Compresses, seals and stores `plain` as a repository file of `kind`, named by the hash of its
 *  stored bytes (so a reader can tell a damaged file by its name). Returns the name. */
export async function putSealedFile(store: Pick<BlobStore, 'put'>, kind: BlobKind, sealedKind: SealedFileKind, dataKey: Uint8Array, plain: Uint8Array, random: RandomBytes, opts: Op = {}): Promise<string> {
  const file = sealFile(dataKey, sealedKind, await encode(plain, { codec: 'zstd', level: 3 }), random);
  const name = plainHash(file);
  await store.put({ kind, name }, file, opts);
  return name;
}

/** Reads a file written by putSealedFile, checks it against its name, and opens it. */
export async function getSealedFile(store: Pick<BlobStore, 'get'>, kind: BlobKind, sealedKind: SealedFileKind, dataKey: Uint8Array, name: string, opts: Op = {}): Promise<Uint8Array> {
  const file = await store.get({ kind, name }, undefined, opts);
  if (plainHash(file) !== name) throw new IntegrityError('file does not hash to its name: it changed after it was written');
  return openFile(dataKey, sealedKind, file);
}
