// Typed arrays that grow: large ones in place (a resizable buffer the array tracks), small ones
// by a copy; either way the items kept and the new ones zero.
import { describe, expect, it } from 'vitest';
import { grownTo } from '../../src/core/growable.js';

const MiB = 1024 * 1024;

describe('grownTo', () => {
  it('copies a small array into a longer one, items kept and the rest zero', () => {
    const a = Uint32Array.of(1, 2, 3);
    const b = grownTo(a, 10, Uint32Array);
    expect(b).not.toBe(a);
    expect([...b]).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 0, 0]);
    expect((b.buffer as ArrayBuffer & { resizable?: boolean }).resizable).toBe(false);
    expect(grownTo(b, 4, Uint32Array)).toBe(b);
  });

  it('grows a large array in place from then on: the same array, its items kept, the rest zero', () => {
    const a = new Float64Array(1000).fill(7);
    const big = grownTo(a, MiB, Float64Array);
    expect((big.buffer as ArrayBuffer & { resizable?: boolean }).resizable).toBe(true);
    expect(big.length).toBe(MiB);
    expect(big[999]).toBe(7);
    expect(big[1000]).toBe(0);
    big[MiB - 1] = 5;
    const bigger = grownTo(big, 3 * MiB, Float64Array);
    expect(bigger).toBe(big);
    expect(bigger.length).toBe(3 * MiB);
    expect(bigger.byteLength).toBe(3 * MiB * 8);
    expect([bigger[0], bigger[MiB - 1], bigger[MiB], bigger[3 * MiB - 1]]).toEqual([7, 5, 0, 0]);
  });

  it('keeps every item of a byte array grown step by step past the in-place size', () => {
    let a = new Uint8Array(16);
    let n = 0;
    for (let len = 16; len <= 4 * MiB; len = Math.ceil(len * 1.5)) {
      a = grownTo(a, len, Uint8Array);
      for (; n < len; n++) a[n] = n % 251;
    }
    let ok = true;
    for (let i = 0; i < n; i++) if (a[i] !== i % 251) ok = false;
    expect(ok).toBe(true);
  });
});
