import { expect } from 'vitest';
import type { CairnError, ErrorCode } from '../../src/core/errors.js';
import type { RandomBytes } from '../../src/core/ids.js';

/** One step of xorshift32 (Marsaglia 2003: 13, 17, 5); never leaves 0 once seeded non-zero. */
function step(x: number): number {
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/** `sizeBytes` pseudo-random bytes from xorshift32 seeded with `seed`, each 32-bit state written
 *  little-endian. Part of the chunker stability vectors: changing it changes the pinned inputs. */
export function xorshiftBytes(sizeBytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(sizeBytes);
  const view = new DataView(out.buffer);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= sizeBytes; i += 4) {
    x = step(x);
    view.setUint32(i, x, true);
  }
  for (; i < sizeBytes; i++) {
    x = step(x);
    out[i] = x & 0xff;
  }
  return out;
}

/** A deterministic stand-in for a secure random source: successive calls continue one xorshift
 *  stream, so a test that draws in the same order always sees the same bytes. */
export function seededRandom(seed: number): RandomBytes {
  let x = seed >>> 0 || 1;
  return (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = step(x);
      out[i] = x & 0xff;
    }
    return out;
  };
}

/** Low-entropy text of exactly `sizeBytes`: log-like lines that repeat with changing numbers. */
export function lowEntropyText(sizeBytes: number): Uint8Array {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < sizeBytes; i++) {
    const line = `${String(i).padStart(8, '0')} ${words[i % words.length]} request=${(i * 7919) % 100_003} status=${i % 17 === 0 ? 500 : 200} took=${(i * 31) % 997}ms\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, sizeBytes);
}

/** A readable hex dump (offset, 16 bytes a line) for golden files of binary records. */
export function hexDump(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lines: string[] = [];
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, o + 16).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    lines.push(`${o.toString(16).padStart(8, '0')}  ${row}`);
  }
  return lines.join('\n') + '\n';
}

/** Asserts that `p` rejects with a CairnError (or subclass) of `code`; returns the error. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<CairnError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeInstanceOf(Error);
  expect((err as CairnError).code).toBe(code);
  return err as CairnError;
}

/** Asserts that `fn` throws a CairnError (or subclass) of `code`; returns the error. */
export function expectThrowCode(fn: () => unknown, code: ErrorCode): CairnError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected a throw with ${code}`).toBeInstanceOf(Error);
  expect((err as CairnError).code).toBe(code);
  return err as CairnError;
}

/** A copy of `bytes` with bit `bit` (0 = lowest bit of byte 0) flipped. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >>> 3]! ^= 1 << (bit & 7);
  return out;
}
