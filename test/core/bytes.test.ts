// copyInto: a plain copy, into shared memory as into any array.
import { describe, expect, it } from 'vitest';
import { copyInto } from '../../src/core/bytes.js';

describe('copyInto', () => {
  it('copies every byte to its place in shared and unshared memory, and nothing around it', () => {
    const src = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    for (const dst of [new Uint8Array(new SharedArrayBuffer(2048)), new Uint8Array(2048), Buffer.alloc(2048)]) {
      dst.fill(9);
      copyInto(dst.subarray(10), 5, src);
      expect(Buffer.from(dst.subarray(15, 1015)).equals(Buffer.from(src))).toBe(true);
      expect([dst[14], dst[1015]]).toEqual([9, 9]);
      copyInto(dst, 0, new Uint8Array(0));
      expect(dst[0]).toBe(9);
    }
  });

  it('refuses a copy past the end of the target', () => {
    expect(() => copyInto(new Uint8Array(10), 5, new Uint8Array(6))).toThrow(RangeError);
  });
});
