import { describe, expect, it } from 'vitest';
import { MemoryBlobStore, createMemoryStore } from '../../src/backend/index.js';
import { runBlobStoreContract } from './blob-store-contract.js';

runBlobStoreContract('MemoryBlobStore', async () => ({ store: createMemoryStore() }), { stagesFiles: false });

describe('MemoryBlobStore', () => {
  it('stamps modifiedMs from its injected clock', async () => {
    let nowMs = 1_000;
    const store = new MemoryBlobStore({ now: () => nowMs });
    await store.put({ kind: 'locks', name: 'l1' }, new Uint8Array([1]));
    nowMs = 5_000;
    await store.put({ kind: 'locks', name: 'l2' }, new Uint8Array([2]));
    expect((await store.stat({ kind: 'locks', name: 'l1' })).modifiedMs).toBe(1_000);
    const listed: Record<string, number> = {};
    for await (const info of store.list('locks')) listed[info.ref.name] = info.modifiedMs;
    expect(listed).toEqual({ l1: 1_000, l2: 5_000 });
  });

  it('keeps its own copy of a Buffer body (whose slice is a view)', async () => {
    const store = new MemoryBlobStore();
    const body = Buffer.from('hello');
    await store.put({ kind: 'keys', name: 'k' }, body);
    body.write('HELLO');
    expect(Buffer.from(await store.get({ kind: 'keys', name: 'k' })).toString()).toBe('hello');
  });
});
