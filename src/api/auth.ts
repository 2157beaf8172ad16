import { createHash, timingSafeEqual } from 'node:crypto';

/** Who may do what: a reader sees everything; an operator also starts and cancels jobs. */
export type Role = 'reader' | 'operator';

/** A configured token: its secret and its role. */
export interface TokenEntry {
  readonly role: Role;
  readonly secret: string;
}

/** The shortest token accepted from configuration: 128 bits in base64. */
export const MIN_TOKEN_CHARS = 22;

/**
 * Looks up the role of a presented bearer token. Every configured token is compared, each in
 * constant time over SHA-256 digests (equal lengths whatever was presented), so the time taken
 * says nothing about which token or how much of one matched.
 */
export function tokenChecker(tokens: readonly TokenEntry[]): (presented: string) => Role | undefined {
  const known = tokens.map((t) => ({ role: t.role, digest: sha256(t.secret) }));
  return (presented) => {
    const d = sha256(presented);
    let found: Role | undefined;
    for (const k of known) {
      // no early exit: every token costs the same
      if (timingSafeEqual(d, k.digest) && found !== 'operator') found = k.role;
    }
    return found;
  };
}

/** Whether a role may use a route that needs `need`. */
export function allows(role: Role, need: Role): boolean {
  return need === 'reader' || role === 'operator';
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
