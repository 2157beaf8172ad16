import { type DecipherGCM, createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { copyInto } from './bytes.js';
import { IntegrityError } from './errors.js';
import type { RandomBytes } from './ids.js';

/** AES-256-GCM nonce length: 96 bits, the size GCM is specified for. */
export const NONCE_BYTES = 12;
/** GCM tag length: the full 128 bits. */
export const TAG_BYTES = 16;
/** Bytes a sealed message adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Seals `plaintext` with AES-256-GCM under `key` and a fresh random nonce; `aad` is bound to the
 *  ciphertext (authenticated, not stored). Layout: nonce ‖ ciphertext ‖ tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, random: RandomBytes, aad?: Uint8Array): Buffer {
  return sealParts(key, [plaintext], random, aad);
}

/** seal() of the concatenation of `parts`, without first copying them together. */
export function sealParts(key: Uint8Array, parts: readonly Uint8Array[], random: RandomBytes, aad?: Uint8Array): Buffer {
  return Buffer.concat(sealPieces(key, parts, random, aad));
}

/** The most plaintext sealPieces() encrypts per cipher call (see there). */
export const SEAL_PIECE_BYTES = 64 * 1024;

/** sealParts() as the pieces whose concatenation is the sealed message (nonce, ciphertext
 *  pieces, tag), for a caller that copies them into a larger buffer at once (a pack): the
 *  nonce piece is this thread's scratch, overwritten by the next call. The ciphertext comes in
 *  pieces of at most SEAL_PIECE_BYTES: node:crypto returns a new buffer per call, and one per
 *  0.5-8 MiB chunk, dead as soon as it was copied into its pack, left a sealing thread's malloc
 *  heap full of free holes of every size until the next GC; pieces of one size are reused as
 *  they are freed (docs/decisions.md §34). Parts shorter than a piece are gathered into one
 *  piece (a blob's codec byte and body: one cipher call, not two), and the nonce goes to
 *  node:crypto from memory outside V8's heap: each buffer node:crypto returns, and each small
 *  array it is given from V8's heap, is a malloc (§35). */
export function sealPieces(key: Uint8Array, parts: readonly Uint8Array[], random: RandomBytes, aad?: Uint8Array): Uint8Array[] {
  const scratch = (sealScratch ??= { nonce: Buffer.allocUnsafeSlow(NONCE_BYTES), gather: Buffer.allocUnsafeSlow(SEAL_PIECE_BYTES) });
  const nonce = scratch.nonce;
  nonce.set(random(NONCE_BYTES));
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  if (aad) cipher.setAAD(aad);
  const pieces: Uint8Array[] = [nonce];
  const gather = scratch.gather;
  let gathered = 0;
  for (const p of parts) {
    let at = 0;
    if (gathered > 0) {
      at = Math.min(p.length, SEAL_PIECE_BYTES - gathered);
      copyInto(gather, gathered, p.subarray(0, at));
      gathered += at;
      if (gathered === SEAL_PIECE_BYTES) {
        pieces.push(cipher.update(gather));
        gathered = 0;
      }
    }
    for (; p.length - at >= SEAL_PIECE_BYTES; at += SEAL_PIECE_BYTES) pieces.push(cipher.update(p.subarray(at, at + SEAL_PIECE_BYTES)));
    if (at < p.length) {
      copyInto(gather, gathered, p.subarray(at));
      gathered += p.length - at;
    }
  }
  if (gathered > 0) pieces.push(cipher.update(gather.subarray(0, gathered)));
  const fin = cipher.final();
  if (fin.length > 0) pieces.push(fin);
  pieces.push(cipher.getAuthTag());
  return pieces;
}

/** sealPieces()'s buffers on this thread (module state is per thread). */
let sealScratch: { readonly nonce: Buffer; readonly gather: Buffer } | undefined;

/** Opens a sealed message; rejects with IntegrityError when it was altered, truncated, sealed
 *  under another key, or bound to another `aad`. */
export function open(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  const { decipher, body } = decipherOf(key, sealed, aad);
  try {
    const plain = decipher.update(body);
    const fin = decipher.final();
    return fin.length === 0 ? plain : Buffer.concat([plain, fin]);
  } catch (err) {
    throw authFailed(err);
  }
}

/** The decipher of a sealed message (its nonce, tag and `aad` set), and its ciphertext. */
function decipherOf(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array | undefined): { decipher: DecipherGCM; body: Uint8Array } {
  if (sealed.length < SEAL_OVERHEAD) throw new IntegrityError(`sealed message of ${sealed.length} bytes is shorter than its overhead`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  if (aad) decipher.setAAD(aad);
  return { decipher, body: sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES) };
}

const authFailed = (err: unknown): IntegrityError => new IntegrityError('authentication failed: the data was altered or sealed under another key', { cause: err });

/**
 * open() that writes the plaintext over the ciphertext in `sealed` and returns a view of it:
 * nothing of the message's size is allocated (node:crypto's buffer per call is one of at most
 * SEAL_PIECE_BYTES, copied back at once). For a caller that owns `sealed` and needs it no more
 * (a restore's file writers open each blob in the batch that brought it); `sealed` is changed
 * also when it throws. Throws IntegrityError as open() does.
 */
export function openInPlace(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  const { decipher, body } = decipherOf(key, sealed, aad);
  let out = 0;
  try {
    for (let at = 0; at < body.length; at += SEAL_PIECE_BYTES) {
      const piece = decipher.update(body.subarray(at, at + SEAL_PIECE_BYTES));
      copyInto(body, out, piece);
      out += piece.length;
    }
    const fin = decipher.final();
    copyInto(body, out, fin);
    out += fin.length;
  } catch (err) {
    throw authFailed(err);
  }
  return body.subarray(0, out);
}

/** A 32-byte subkey of `key` for one pack or file, from its random `salt` (HKDF-SHA256). Each pack
 *  has its own subkey, so no key comes near GCM's 2^32 random-nonce limit. */
export function subkey(key: Uint8Array, salt: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, purpose, 32));
}
