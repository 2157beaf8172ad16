import { Blake3Hasher } from '@napi-rs/blake-hash';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdHasher, deriveKey, plainHash } from '../../src/core/hash.js';
import { isHexId } from '../../src/core/ids.js';

/** The key of the official BLAKE3 test vectors (test_vectors.json). */
const VECTOR_KEY = Buffer.from('whats the Elvish word for friend');
const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

describe('IdHasher', () => {
  it('computes keyed BLAKE3 (official test vector, empty input)', () => {
    expect(new IdHasher(VECTOR_KEY).id(new Uint8Array(0))).toBe('92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26');
  });

  it('gives the same id for the same input and key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (data) => {
        expect(new IdHasher(KEY_A).id(data)).toBe(new IdHasher(KEY_A).id(Uint8Array.from(data)));
      }),
    );
  });

  it('gives different ids under different keys, and differs from the unkeyed hash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), (data) => {
        const a = new IdHasher(KEY_A).id(data);
        expect(a).not.toBe(new IdHasher(KEY_B).id(data));
        expect(a).not.toBe(plainHash(data));
      }),
    );
  });

  it('returns the same id as hex and as 32 raw bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), (data) => {
        const h = new IdHasher(KEY_A);
        const raw = h.raw(data);
        expect(raw).toHaveLength(32);
        expect(h.id(data)).toBe(raw.toString('hex'));
        expect(isHexId(h.id(data))).toBe(true);
      }),
    );
  });

  it('resets between calls: a hasher reused after other inputs gives a fresh hasher’s id', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 512 }), { minLength: 1, maxLength: 8 }), (inputs) => {
        const reused = new IdHasher(KEY_A);
        for (const data of inputs) expect(reused.id(data)).toBe(new IdHasher(KEY_A).id(data));
      }),
    );
  });

  it('equals a streaming keyed BLAKE3 over any split of the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(), (data, at) => {
        const cut = data.length === 0 ? 0 : at % data.length;
        const s = Blake3Hasher.newKeyed(Buffer.from(KEY_A));
        s.update(data.subarray(0, cut));
        s.update(data.subarray(cut));
        expect(new IdHasher(KEY_A).id(data)).toBe(s.digest('hex'));
      }),
    );
  });

  it.each([0, 16, 31, 33, 64])('rejects an id key of %i bytes', (n) => {
    expect(() => new IdHasher(new Uint8Array(n))).toThrow(RangeError);
  });
});

describe('plainHash', () => {
  it.each([
    ['empty', new Uint8Array(0), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
    ['one zero byte', Uint8Array.of(0), '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  ])('is unkeyed BLAKE3 (official test vector: %s)', (_label, data, hex) => {
    expect(plainHash(data)).toBe(hex);
  });
});

describe('deriveKey', () => {
  it('derives 32 bytes that depend on both the context and the key material', () => {
    const a = deriveKey('cairn test context a', KEY_A);
    expect(a).toHaveLength(32);
    expect(deriveKey('cairn test context a', KEY_A).equals(a)).toBe(true);
    expect(deriveKey('cairn test context b', KEY_A).equals(a)).toBe(false);
    expect(deriveKey('cairn test context a', KEY_B).equals(a)).toBe(false);
  });

  it('is BLAKE3 derive_key (official test vector, empty input)', () => {
    expect(deriveKey('BLAKE3 2019-12-27 16:29:52 test vectors context', new Uint8Array(0)).toString('hex')).toBe('2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d');
  });
});
