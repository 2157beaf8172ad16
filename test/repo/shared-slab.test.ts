// The slab seal pools write batches into: runs of 64 KiB granules lent out first fit, given
// back whole or shrunk to what a batch holds, in memory a worker thread sees.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GRANULE_BYTES, SharedSlab } from '../../src/repo/shared-slab.js';

const G = GRANULE_BYTES;

describe('SharedSlab', () => {
  it('lends out runs of whole granules, first fit, and says when no run is long enough', () => {
    const slab = new SharedSlab(8 * G);
    expect(slab.buffer.byteLength).toBe(8 * G);
    expect(slab.take(1)).toBe(0);
    expect(slab.take(G + 1)).toBe(G);
    expect(slab.bytesTaken).toBe(3 * G);
    expect(slab.take(5 * G + 1)).toBe(-1);
    expect(slab.take(5 * G)).toBe(3 * G);
    expect(slab.take(1)).toBe(-1);
    expect(slab.bytesTaken).toBe(8 * G);
  });

  it('reuses a run given back, and a hole only for what fits in it', () => {
    const slab = new SharedSlab(8 * G);
    const a = slab.take(2 * G);
    const b = slab.take(2 * G);
    const c = slab.take(2 * G);
    expect([a, b, c]).toEqual([0, 2 * G, 4 * G]);
    slab.release(b, 2 * G);
    // three granules do not fit in the two-granule hole: the run after c is too short too
    expect(slab.take(3 * G)).toBe(-1);
    expect(slab.take(G)).toBe(2 * G);
    expect(slab.take(G)).toBe(3 * G);
    expect(slab.take(2 * G)).toBe(6 * G);
    expect(slab.bytesTaken).toBe(8 * G);
  });

  it('shrinks a run to the granules its first bytes need, and refuses to give back what is not lent out', () => {
    const slab = new SharedSlab(8 * G);
    const at = slab.take(4 * G);
    slab.release(at, 4 * G, G + 10);
    expect(slab.bytesTaken).toBe(2 * G);
    expect(slab.take(2 * G)).toBe(2 * G);
    expect(() => slab.release(6 * G, G)).toThrow(/granule 6 given back but not lent out/);
    // a batch that keeps nothing gives its whole run back
    slab.release(at, 2 * G, 0);
    expect(slab.take(2 * G)).toBe(0);
  });

  it('is memory a worker thread reads and writes in place', async () => {
    const slab = new SharedSlab(2 * G);
    const at = slab.take(100);
    slab.view(at, 100).fill(7);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const u = new Uint8Array(workerData);
       parentPort.postMessage(u[99]);
       u[100] = 9;
       parentPort.postMessage('done');`,
      { eval: true, workerData: slab.buffer },
    );
    const seen: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m) => {
        seen.push(m);
        if (m === 'done') resolve();
      });
      worker.on('error', reject);
    });
    await worker.terminate();
    expect(seen[0]).toBe(7);
    expect(slab.view(0, 101)[100]).toBe(9);
  });

  it('rejects a size of zero', () => {
    expect(() => new SharedSlab(0)).toThrow(RangeError);
  });
});
