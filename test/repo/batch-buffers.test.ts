import { describe, expect, it } from 'vitest';
import { BatchBuffers } from '../../src/repo/batch-buffers.js';

describe('BatchBuffers', () => {
  it('hands back what came back, up to `keep` buffers of the batch size, each owning its ArrayBuffer', () => {
    const pool = new BatchBuffers(1024, 2);
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
    const pool = new BatchBuffers(1024, 4);
    const big = pool.take(5000);
    expect(big.length).toBe(5000);
    pool.giveBack(big.buffer as ArrayBuffer);
    expect(pool.take(100).buffer).not.toBe(big.buffer);
  });
});
