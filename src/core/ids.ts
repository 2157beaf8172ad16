/** Branded ids: all are 64 lowercase hex characters (32 bytes) unless noted. */
export type BlobId = string & { readonly __brand: 'BlobId' };
/** Names a pack file under data/. */
export type PackId = string & { readonly __brand: 'PackId' };
/** Names a snapshot manifest under snapshots/. */
export type SnapshotId = string & { readonly __brand: 'SnapshotId' };
/** Names an index file under index/. */
export type IndexId = string & { readonly __brand: 'IndexId' };
/** Names a key file under keys/. */
export type KeyId = string & { readonly __brand: 'KeyId' };

/** Bytes of a binary id. */
export const ID_BYTES = 32;

const HEX_ID = /^[0-9a-f]{64}$/;

/** True when `s` has the shape of an id (64 lowercase hex characters). */
export function isHexId(s: string): boolean {
  return HEX_ID.test(s);
}

/** Hex of a 32-byte id buffer. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** The 32 bytes of a hex id. */
export function fromHex(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

/** A random id from `random` (a source of cryptographically secure bytes). */
export function randomId<T extends string>(random: RandomBytes): T {
  return toHex(random(ID_BYTES)) as T;
}

/** Source of cryptographically secure random bytes; core takes randomness as an argument. */
export type RandomBytes = (n: number) => Uint8Array;
