import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CairnError, NotFoundError } from '../../src/core/errors.js';
import { BLOB_KINDS, tempName } from '../../src/repo/blob-store.js';
import type { BlobKind, BlobRef, BlobStore } from '../../src/repo/blob-store.js';

/** Deterministic pseudo-random bytes (xorshift32), so that a failure is reproducible. */
function testBytes(sizeBytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(sizeBytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < sizeBytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Asserts equal bytes without an element-by-element diff of megabytes. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

async function names(store: BlobStore, kind: BlobKind): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(kind)) out.push(info.ref.name);
  return out.sort();
}

const data = (name: string): BlobRef => ({ kind: 'data', name });
const ABORTED = (): AbortSignal => AbortSignal.abort();

/** Runs the BlobStore contract (repo/blob-store.ts) against the stores `make` builds, one per test.
 *  `stagesFiles`: the store has a stagingDir and takes files with putFile. */
export function runBlobStoreContract(
  name: string,
  make: () => Promise<{ store: BlobStore; cleanup?: () => Promise<void> }>,
  { stagesFiles }: { stagesFiles: boolean },
): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    let cleanup: (() => Promise<void>) | undefined;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup?.();
    });

    it('describes its location', () => {
      expect(store.location).toMatch(/\S/);
    });

    it.each([
      ['small', 100],
      ['empty', 0],
      ['5 MiB', 5 * 1024 * 1024 + 7],
    ])('round-trips a %s body through put, get and stat', async (_label, sizeBytes) => {
      const body = testBytes(sizeBytes, 7);
      await store.put(data('ab01'), body);
      expectBytes(await store.get(data('ab01')), body);
      const info = await store.stat(data('ab01'));
      expect(info.ref).toEqual(data('ab01'));
      expect(info.sizeBytes).toBe(sizeBytes);
      expect(Number.isFinite(info.modifiedMs)).toBe(true);
    });

    it('keeps nothing of the body once put resolves: the caller may overwrite it', async () => {
      const body = testBytes(64 * 1024, 11);
      const want = Uint8Array.from(body);
      await store.put(data('ef03'), body);
      body.fill(0x5a);
      expectBytes(await store.get(data('ef03')), want);
    });

    it.each([
      ['start', 0, 10],
      ['middle', 1000, 333],
      ['end', 4086, 10],
      ['whole', 0, 4096],
      ['empty at the end', 4096, 0],
    ])('reads a range at the %s', async (_label, offset, length) => {
      const body = testBytes(4096, 3);
      await store.put(data('cd02'), body);
      expectBytes(await store.get(data('cd02'), { offset, length }), body.subarray(offset, offset + length));
    });

    it.each([
      ['overlapping the end', 4090, 10],
      ['starting past the end', 4097, 0],
      ['far past the end', 1 << 20, 1],
    ])('rejects a range %s', async (_label, offset, length) => {
      await store.put(data('cd02'), testBytes(4096, 3));
      await expect(store.get(data('cd02'), { offset, length })).rejects.toBeInstanceOf(CairnError);
    });

    it('lists exactly the objects of each kind, with their sizes', async () => {
      const put: Record<BlobKind, string[]> = {
        config: ['cairn.json'], keys: ['k1', 'k2'], data: ['00aa', 'a1bb', 'a1cc', 'ffdd', 'x9.y-z_0'],
        index: ['i1'], snapshots: ['s1', 's2', 's3'], deleted: [], locks: ['l1'],
      };
      for (const kind of BLOB_KINDS) {
        for (const [i, n] of put[kind].entries()) await store.put({ kind, name: n }, testBytes(10 + i));
      }
      for (const kind of BLOB_KINDS) expect(await names(store, kind)).toEqual([...put[kind]].sort());
      for await (const info of store.list('data')) {
        expect(info.sizeBytes).toBe(10 + put.data.indexOf(info.ref.name));
        expect(info.ref.kind).toBe('data');
      }
    });

    it.each(BLOB_KINDS)('lists nothing for an empty kind (%s)', async (kind) => {
      expect(await names(store, kind)).toEqual([]);
    });

    it('replaces an object on a put without ifNoneMatch', async () => {
      await store.put(data('ee'), testBytes(50, 1));
      await store.put(data('ee'), testBytes(20, 2));
      expectBytes(await store.get(data('ee')), testBytes(20, 2));
      expect((await store.stat(data('ee'))).sizeBytes).toBe(20);
      expect(await names(store, 'data')).toEqual(['ee']);
    });

    it('creates with ifNoneMatch and refuses to replace, keeping the old content', async () => {
      const ref: BlobRef = { kind: 'locks', name: 'l1' };
      await store.put(ref, testBytes(30, 1), { ifNoneMatch: true });
      const err: unknown = await store.put(ref, testBytes(40, 2), { ifNoneMatch: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CairnError);
      expect((err as CairnError).code).toBe('E_BLOB_EXISTS');
      expectBytes(await store.get(ref), testBytes(30, 1));
      expect(await names(store, 'locks')).toEqual(['l1']);
    });

    it('has exactly one winner among 20 concurrent ifNoneMatch puts', async () => {
      const ref: BlobRef = { kind: 'locks', name: 'race' };
      const bodies = Array.from({ length: 20 }, (_, i) => testBytes(1000 + i, i + 1));
      const results = await Promise.allSettled(bodies.map((b) => store.put(ref, b, { ifNoneMatch: true })));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as CairnError).code).toBe('E_BLOB_EXISTS');
      }
      expectBytes(await store.get(ref), bodies[winners[0] ?? -1] ?? new Uint8Array());
      expect(await names(store, 'locks')).toEqual(['race']);
    });

    it('keeps one whole body when concurrent plain puts race', async () => {
      const bodies = Array.from({ length: 8 }, (_, i) => testBytes(64 * 1024 + i, i + 1));
      await Promise.all(bodies.map((b) => store.put(data('ff00'), b)));
      const got = await store.get(data('ff00'));
      expect(bodies.some((b) => Buffer.compare(b, got) === 0)).toBe(true);
      expect(await names(store, 'data')).toEqual(['ff00']);
    });

    it('deletes: get and stat then reject with NotFoundError and list omits it', async () => {
      await store.put(data('dd'), testBytes(5));
      await store.delete(data('dd'));
      // one at a time: a second call started early could reject before anyone awaits it
      for (const op of [() => store.get(data('dd')), () => store.stat(data('dd'))]) {
        const err: unknown = await op().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NotFoundError);
        expect((err as CairnError).code).toBe('E_BLOB_NOT_FOUND');
      }
      expect(await names(store, 'data')).toEqual([]);
    });

    it('deletes a missing object without error', async () => {
      await expect(store.delete(data('nothere'))).resolves.toBeUndefined();
      await expect(store.delete({ kind: 'locks', name: 'nothere' })).resolves.toBeUndefined();
    });

    it('rejects get and stat of a missing object with NotFoundError', async () => {
      await expect(store.get(data('missing'))).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.get(data('missing'), { offset: 0, length: 1 })).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.stat({ kind: 'snapshots', name: 'missing' })).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.get({ kind: 'config', name: 'cairn.json' })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('is not changed by mutating the bytes given to put or returned by get', async () => {
      const body = testBytes(100, 9);
      await store.put(data('aa'), body);
      body.fill(0);
      const got = await store.get(data('aa'));
      got.fill(1);
      expectBytes(await store.get(data('aa')), testBytes(100, 9));
    });

    it.each<[string, (s: BlobStore, signal: AbortSignal) => Promise<unknown>]>([
      ['put', (s, signal) => s.put(data('ab'), testBytes(10), { signal })],
      ['put ifNoneMatch', (s, signal) => s.put(data('ab'), testBytes(10), { signal, ifNoneMatch: true })],
      ['get', (s, signal) => s.get(data('ab'), undefined, { signal })],
      ['stat', (s, signal) => s.stat(data('ab'), { signal })],
      ['delete', (s, signal) => s.delete(data('ab'), { signal })],
      ['list', async (s, signal) => { for await (const _ of s.list('data', { signal })) { /* drain */ } }],
    ])('rejects %s with an AbortError on an aborted signal and stores nothing', async (_label, op) => {
      const err: unknown = await op(store, ABORTED()).then(() => undefined, (e: unknown) => e);
      expect((err as Error | undefined)?.name).toBe('AbortError');
      expect(await names(store, 'data')).toEqual([]);
    });

    it('round-trips the config object', async () => {
      const ref: BlobRef = { kind: 'config', name: 'cairn.json' };
      const body = new TextEncoder().encode('{"version":1}');
      await store.put(ref, body, { ifNoneMatch: true });
      expectBytes(await store.get(ref), body);
      expect((await store.stat(ref)).sizeBytes).toBe(body.byteLength);
      expect(await names(store, 'config')).toEqual(['cairn.json']);
    });

    it.each<[string, BlobRef]>([
      ['a parent path', data('../x')],
      ['a slash', { kind: 'index', name: 'a/b' }],
      ['an empty name', { kind: 'keys', name: '' }],
      ['a leading dot', { kind: 'locks', name: '.tmp-1' }],
      ['a double dot', { kind: 'snapshots', name: 'a..b' }],
      ['upper case', data('ABCD')],
      ['another config name', { kind: 'config', name: 'other.json' }],
      ['an unknown kind', { kind: 'packs' as BlobKind, name: 'ab' }],
    ])('rejects a name with %s, permanently', async (_label, ref) => {
      for (const op of [() => store.put(ref, testBytes(3)), () => store.get(ref), () => store.stat(ref), () => store.delete(ref)]) {
        const err: unknown = await op().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(CairnError);
        expect((err as CairnError).retryable).toBe(false);
      }
    });

    it('reads into the buffer it is given when it holds the bytes asked for, and not otherwise', async () => {
      const body = testBytes(300_000, 21);
      await store.put(data('ef01'), body);
      const into = new Uint8Array(400_000).fill(0x5a);
      const whole = await store.get(data('ef01'), undefined, { into });
      expect(whole.buffer).toBe(into.buffer);
      expect(whole.byteOffset).toBe(0);
      expectBytes(whole, body);
      expect(into[300_000]).toBe(0x5a);
      const part = await store.get(data('ef01'), { offset: 1000, length: 5000 }, { into });
      expect(part.buffer).toBe(into.buffer);
      expectBytes(part, body.subarray(1000, 6000));
      const small = new Uint8Array(10);
      const notInto = await store.get(data('ef01'), { offset: 0, length: 5000 }, { into: small });
      expect(notInto.buffer).not.toBe(small.buffer);
      expectBytes(notInto, body.subarray(0, 5000));
    });

    it(stagesFiles ? 'has a staging folder and takes files from it' : 'has no staging folder', () => {
      expect(store.stagingDir !== undefined).toBe(stagesFiles);
      if (stagesFiles) expect(typeof store.putFile).toBe('function');
    });

    // putFile: a store that takes files (a real folder to stage them in)
    const staged = (bytes: Uint8Array): string => {
      const path = join(store.stagingDir!, tempName());
      writeFileSync(path, bytes);
      return path;
    };

    it.runIf(stagesFiles)('stores a staged file with putFile, which then is gone; the object lists and reads back', async () => {
      const body = testBytes(3 * 1024 * 1024 + 5, 11);
      const file = staged(body);
      await store.putFile!(data('cd01'), file);
      expect(existsSync(file)).toBe(false);
      expectBytes(await store.get(data('cd01')), body);
      expect(await names(store, 'data')).toEqual(['cd01']);
      // as put: an existing object is replaced
      const again = testBytes(100, 12);
      await store.putFile!(data('cd01'), staged(again));
      expectBytes(await store.get(data('cd01')), again);
    });

    it.runIf(stagesFiles)('refuses putFile with ifNoneMatch on an existing object, and leaves the file to its caller', async () => {
      await store.put(data('cd02'), testBytes(10, 1));
      const file = staged(testBytes(20, 2));
      await expect(store.putFile!(data('cd02'), file, { ifNoneMatch: true })).rejects.toMatchObject({ code: 'E_BLOB_EXISTS' });
      expect(existsSync(file)).toBe(true);
      expectBytes(await store.get(data('cd02')), testBytes(10, 1));
      unlinkSync(file);
    });

    it.runIf(stagesFiles)('rejects putFile of a missing file, or on an aborted signal, and stores nothing', async () => {
      await expect(store.putFile!(data('cd03'), join(store.stagingDir!, '.tmp-0000000000000000'))).rejects.toBeInstanceOf(CairnError);
      const file = staged(testBytes(20, 3));
      const err: unknown = await store.putFile!(data('cd03'), file, { signal: ABORTED() }).then(() => undefined, (e: unknown) => e);
      expect((err as Error | undefined)?.name).toBe('AbortError');
      expect(existsSync(file)).toBe(true);
      expect(await names(store, 'data')).toEqual([]);
      unlinkSync(file);
    });
  });
}
