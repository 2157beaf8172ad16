import { IntegrityError } from './errors.js';
import { type Encoded, decode } from './codec.js';
import type { RandomBytes } from './ids.js';
import { open, sealParts, subkey } from './seal.js';

const MAGIC = Buffer.from('CRNF', 'latin1');
const VERSION = 1;
const SALT_BYTES = 16;
const HEADER_BYTES = 8 + SALT_BYTES;

/** What a sealed file holds; bound to the ciphertext so one kind cannot pass for another. */
export type SealedFileKind = 'index' | 'snapshot' | 'deleted';

/** Seals an already encoded body as a standalone repository file (index, snapshot, marker):
 *  magic "CRNF", version, 3 zero bytes, a 16-byte salt, then nonce ‖ AES-GCM(codec ‖ body) ‖ tag
 *  under a subkey of the data key for that salt. */
export function sealFile(dataKey: Uint8Array, kind: SealedFileKind, body: Encoded, random: RandomBytes): Buffer {
  const salt = random(SALT_BYTES);
  const key = subkey(dataKey, salt, 'cairn file v1');
  const header = Buffer.alloc(8);
  MAGIC.copy(header, 0);
  header[4] = VERSION;
  const sealed = sealParts(key, [Uint8Array.of(body.codec), body.bytes], random, Buffer.from(kind));
  return Buffer.concat([header, salt, sealed]);
}

/** Opens a file written by sealFile and decodes its body. Rejects with IntegrityError when it is
 *  damaged, of another kind, or not a cairn file. */
export async function openFile(dataKey: Uint8Array, kind: SealedFileKind, file: Uint8Array): Promise<Uint8Array> {
  if (file.length < HEADER_BYTES || !MAGIC.equals(file.subarray(0, 4))) {
    throw new IntegrityError(`not a cairn ${kind} file (bad magic)`);
  }
  if (file[4] !== VERSION) throw new IntegrityError(`${kind} file has format version ${file[4]}, this cairn reads ${VERSION}`);
  const salt = file.subarray(8, HEADER_BYTES);
  const plain = open(subkey(dataKey, salt, 'cairn file v1'), file.subarray(HEADER_BYTES), Buffer.from(kind));
  return decode(plain[0]!, plain.subarray(1));
}
