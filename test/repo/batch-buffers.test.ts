import { describe, expect, it } from 'vitest';
import { BatchBuffers } from '../../src/repo/batch-buffers.js';

const G = 64 * 1024;

describe('BatchBuffers', () => {
  it('gives rooms in its slab while it has runs, then buffers of their own; shrinks and releases either', () => {
    const pool = new BatchBuffers(G, 3 * G, 2);
    const a = pool.room(10);
    const b = pool.room(2 * G);
    expect([a.at, b.at, a.buf.length, b.buf.length]).toEqual([0, G, G, 2 * G]);
    expect(a.buf.buffer).toBe(pool.slab);
    expect(pool.slabBytesInUse).toBe(3 * G);
    // full: a buffer of its own, whole after shrink
    const c = pool.room(10);
    expect(c.at).toBe(-1);
    expect(c.buf.buffer).not.toBe(pool.slab);
    expect(pool.shrink(c, 10).length).toBe(G);
    // b keeps one granule, a goes back whole
    expect(pool.shrink(b, 100).length).toBe(100);
    expect(pool.slabBytesInUse).toBe(2 * G);
    pool.release(a.at, 10, undefined);
    pool.release(b.at, 100, undefined);
    expect(pool.slabBytesInUse).toBe(0);
    pool.release(c.at, 10, c.buf.buffer);
    // the buffer of its own was kept for the next one the slab cannot take
    for (let k = 0; k < 3; k++) pool.room(G);
    expect(pool.room(10).buf.buffer).toBe(c.buf.buffer);
  });

  it('hands back what came back, up to `keep` buffers of the batch size, each owning its ArrayBuffer', () => {
    const pool = new BatchBuffers(1024, 64 * 1024, 2);
    const [a, b, c] = [pool.take(10), pool.take(1024), pool.take(1)];
    for (const buf of [a, b, c]) {
      expect(buf.length).toBe(1024);
      expect(buf.byteOffset).toBe(0);
      expect(buf.buffer.byteLength).toBe(1024);
    }
    for (const buf of [a, b, c]) pool.giveBack(buf.buffer as ArrayBuffer);
    // two were kept (the last given back first), the third was dropped
    expect(pool.take(5).buffer).toBe(b.buffer);
    expect(pool.take(5).buffer).toBe(a.buffer);
    const fresh = pool.take(5).buffer;
    expect([a.buffer, b.buffer, c.buffer]).not.toContain(fresh);
  });

  it('gives a larger request a buffer of its own size, and does not keep it', () => {
    const pool = new BatchBuffers(1024, 64 * 1024, 4);
    const big = pool.take(5000);
    expect(big.length).toBe(5000);
    pool.giveBack(big.buffer as ArrayBuffer);
    expect(pool.take(100).buffer).not.toBe(big.buffer);
  });
});
