import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/core/errors.js';
import { NONCE_BYTES, SEAL_OVERHEAD, SEAL_PIECE_BYTES, TAG_BYTES, open, openInPlace, seal, sealParts, sealPieces, subkey } from '../../src/core/seal.js';
import { flipBit, seededRandom } from './fixtures.js';

const random = (n: number): Uint8Array => randomBytes(n);
const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const aadArb = fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined });

describe('seal / open', () => {
  it('pins the overhead: 12-byte nonce, 16-byte tag', () => {
    expect([NONCE_BYTES, TAG_BYTES, SEAL_OVERHEAD]).toEqual([12, 16, 28]);
  });

  it('gives the ciphertext of a large message in pieces of at most SEAL_PIECE_BYTES, which open as one', () => {
    const key = randomBytes(32);
    const head = Uint8Array.of(2);
    const body = randomBytes(3 * SEAL_PIECE_BYTES + 1000);
    const pieces = sealPieces(key, [head, body], random);
    // nonce, the head gathered with the body's first bytes, two whole pieces of the body, its
    // tail, the tag
    expect(pieces.map((p) => p.length)).toEqual([NONCE_BYTES, SEAL_PIECE_BYTES, SEAL_PIECE_BYTES, SEAL_PIECE_BYTES, 1001, TAG_BYTES]);
    expect(Buffer.compare(open(key, Buffer.concat(pieces)), Buffer.concat([head, body]))).toBe(0);
  });

  it('gathers parts shorter than a piece into one cipher call, across part boundaries', () => {
    const key = randomBytes(32);
    const small = [Uint8Array.of(2), randomBytes(4096)];
    expect(sealPieces(key, small, random).map((p) => p.length)).toEqual([NONCE_BYTES, 4097, TAG_BYTES]);
    // many parts, some empty, crossing a piece boundary between them
    const parts = [randomBytes(SEAL_PIECE_BYTES - 10), new Uint8Array(0), randomBytes(7), randomBytes(20), randomBytes(2 * SEAL_PIECE_BYTES), randomBytes(3)];
    const pieces = sealPieces(key, parts, random);
    expect(pieces.map((p) => p.length)).toEqual([NONCE_BYTES, SEAL_PIECE_BYTES, SEAL_PIECE_BYTES, SEAL_PIECE_BYTES, 20, TAG_BYTES]);
    expect(Buffer.compare(open(key, Buffer.concat(pieces)), Buffer.concat(parts))).toBe(0);
  });

  it('seals any split of a message into parts as the whole message', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 * SEAL_PIECE_BYTES }), { maxLength: 6 }), aadArb, (lengths, aad) => {
        const key = randomBytes(32);
        const parts = lengths.map((n) => randomBytes(n));
        const pieces = sealPieces(key, parts, random, aad);
        expect(pieces.slice(1, -1).every((p) => p.length > 0 && p.length <= SEAL_PIECE_BYTES)).toBe(true);
        expect(Buffer.compare(open(key, Buffer.concat(pieces), aad), Buffer.concat(parts))).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('gives the nonce in this thread\'s scratch: the next call overwrites it', () => {
    const key = randomBytes(32);
    const first = sealPieces(key, [randomBytes(10)], random);
    const nonce = Buffer.from(first[0]!);
    sealPieces(key, [randomBytes(10)], random);
    expect(Buffer.compare(first[0]!, nonce)).not.toBe(0);
  });

  it('opens in place: the plaintext written over the ciphertext, a view of the sealed bytes', () => {
    const key = randomBytes(32);
    const aad = Uint8Array.of(1, 2, 3);
    for (const n of [0, 1, SEAL_PIECE_BYTES - 1, 2 * SEAL_PIECE_BYTES + 17]) {
      const plain = randomBytes(n);
      const sealed = seal(key, plain, random, aad);
      const opened = openInPlace(key, sealed, aad);
      expect(Buffer.compare(opened, plain)).toBe(0);
      expect(opened.buffer).toBe(sealed.buffer);
      expect(opened.byteOffset).toBe(sealed.byteOffset + NONCE_BYTES);
    }
    const plain = randomBytes(3 * SEAL_PIECE_BYTES);
    const sealed = seal(key, plain, random, aad);
    const flipped = flipBit(sealed, (NONCE_BYTES + 2 * SEAL_PIECE_BYTES + 5) * 8);
    expect(() => openInPlace(key, flipped, aad)).toThrow(IntegrityError);
    expect(() => openInPlace(key, Buffer.from(sealed), Uint8Array.of(9))).toThrow(IntegrityError);
    expect(() => openInPlace(key, sealed.subarray(0, SEAL_OVERHEAD - 1))).toThrow(IntegrityError);
  });

  it('round-trips any plaintext under any key and aad', () => {
    fc.assert(
      fc.property(keyArb, fc.uint8Array({ maxLength: 2048 }), aadArb, (key, plain, aad) => {
        const sealed = seal(key, plain, random, aad);
        expect(sealed).toHaveLength(plain.length + SEAL_OVERHEAD);
        expect(Buffer.compare(open(key, sealed, aad), plain)).toBe(0);
      }),
    );
  });

  it('lays out nonce ‖ AES-256-GCM ciphertext ‖ tag (independent decryption)', () => {
    fc.assert(
      fc.property(keyArb, fc.uint8Array({ maxLength: 512 }), aadArb, fc.integer(), (key, plain, aad, seed) => {
        const nonce = seededRandom(seed)(NONCE_BYTES);
        const sealed = seal(key, plain, seededRandom(seed), aad);
        expect(Buffer.compare(sealed.subarray(0, NONCE_BYTES), nonce)).toBe(0);
        const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
        if (aad) d.setAAD(aad);
        d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const out = Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), d.final()]);
        expect(Buffer.compare(out, plain)).toBe(0);
      }),
    );
  });

  it('draws a fresh nonce for every message', () => {
    const key = new Uint8Array(32);
    const a = seal(key, Buffer.from('same'), random);
    const b = seal(key, Buffer.from('same'), random);
    expect(a.equals(b)).toBe(false);
  });

  it('seals parts exactly as it seals their concatenation', () => {
    fc.assert(
      fc.property(keyArb, fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), aadArb, fc.integer(), (key, parts, aad, seed) => {
        const whole = seal(key, Buffer.concat(parts), seededRandom(seed), aad);
        expect(sealParts(key, parts, seededRandom(seed), aad).equals(whole)).toBe(true);
      }),
    );
  });

  it('rejects a message with any one bit flipped (IntegrityError)', () => {
    fc.assert(
      fc.property(keyArb, fc.uint8Array({ maxLength: 256 }), aadArb, fc.nat(), (key, plain, aad, at) => {
        const sealed = seal(key, plain, random, aad);
        const bad = flipBit(sealed, at % (sealed.length * 8));
        expect(() => open(key, bad, aad)).toThrow(IntegrityError);
      }),
    );
  });

  it('rejects a wrong, missing or extra aad (IntegrityError)', () => {
    const key = new Uint8Array(32).fill(3);
    const sealed = seal(key, Buffer.from('payload'), random, Buffer.from('aad one'));
    expect(() => open(key, sealed, Buffer.from('aad two'))).toThrow(IntegrityError);
    expect(() => open(key, sealed)).toThrow(IntegrityError);
    const bare = seal(key, Buffer.from('payload'), random);
    expect(() => open(key, bare, Buffer.from('aad one'))).toThrow(IntegrityError);
    expect(open(key, bare).toString()).toBe('payload');
  });

  it('rejects another key (IntegrityError)', () => {
    const sealed = seal(new Uint8Array(32).fill(1), Buffer.from('payload'), random);
    expect(() => open(new Uint8Array(32).fill(2), sealed)).toThrow(IntegrityError);
  });

  it('rejects every truncation and an extension (IntegrityError)', () => {
    const key = new Uint8Array(32).fill(4);
    const sealed = seal(key, Buffer.from('a message of some length'), random);
    for (let n = 0; n < sealed.length; n++) expect(() => open(key, sealed.subarray(0, n))).toThrow(IntegrityError);
    expect(() => open(key, Buffer.concat([sealed, Buffer.of(0)]))).toThrow(IntegrityError);
  });
});

describe('subkey', () => {
  it('is HKDF-SHA256(key, salt, purpose) of 32 bytes', () => {
    const key = new Uint8Array(32).fill(5);
    const salt = new Uint8Array(16).fill(6);
    const k = subkey(key, salt, 'cairn pack v1');
    expect(k).toHaveLength(32);
    expect(k.equals(Buffer.from(hkdfSync('sha256', key, salt, 'cairn pack v1', 32)))).toBe(true);
  });

  it('depends on the key, the salt and the purpose', () => {
    const key = new Uint8Array(32).fill(5);
    const salt = new Uint8Array(16).fill(6);
    const k = subkey(key, salt, 'cairn pack v1');
    expect(subkey(new Uint8Array(32).fill(7), salt, 'cairn pack v1').equals(k)).toBe(false);
    expect(subkey(key, new Uint8Array(16).fill(7), 'cairn pack v1').equals(k)).toBe(false);
    expect(subkey(key, salt, 'cairn file v1').equals(k)).toBe(false);
  });
});
