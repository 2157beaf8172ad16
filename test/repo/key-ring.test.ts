import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/backend/memory-store.js';
import { plainHash } from '../../src/core/hash.js';
import type { KeyId } from '../../src/core/ids.js';
import { newMasterKey } from '../../src/core/keys.js';
import { addKey, listKeys, resolveKeyId, unlock } from '../../src/repo/key-ring.js';
import { expectCode, expectThrowCode } from '../core/fixtures.js';
import { SMALL_SCRYPT, namesOf, newTestRepo } from './fixtures.js';

const random = (n: number): Uint8Array => randomBytes(n);
const meta = (iso: string, host = 'h2', username = 'bob'): { created: Date; host: string; username: string } => ({ created: new Date(iso), host, username });
const KEY_FILE = new Uint8Array(48).fill(0x5a);

describe('key ring', () => {
  it('adds a second key; either unlocks the same master key', async () => {
    const { repo, store } = await newTestRepo();
    const second = await addKey(store, repo.master, { passphrase: 'second' }, meta('2027-01-01T00:00:00.000Z'), random, { scrypt: SMALL_SCRYPT });
    expect(second).not.toBe(repo.keyId);
    expect(plainHash(await store.get({ kind: 'keys', name: second }))).toBe(second);
    const a = await unlock(store, { passphrase: 'pw' });
    const b = await unlock(store, { passphrase: 'second' });
    expect([a.keyId, b.keyId]).toEqual([repo.keyId, second]);
    for (const m of [a.master, b.master]) {
      expect(Buffer.from(m.dataKey).equals(Buffer.from(repo.master.dataKey))).toBe(true);
      expect(Buffer.from(m.idKey).equals(Buffer.from(repo.master.idKey))).toBe(true);
    }
  });

  it('unlocks with a key file, and tells a passphrase user that key-file keys exist', async () => {
    const { repo, store } = await newTestRepo();
    const kf = await addKey(store, repo.master, { keyFileBytes: KEY_FILE }, meta('2027-01-01T00:00:00.000Z'), random);
    expect((await unlock(store, { keyFileBytes: KEY_FILE })).keyId).toBe(kf);
    await expectCode(unlock(store, { keyFileBytes: new Uint8Array(48).fill(1) }), 'E_WRONG_PASSWORD');
    const err = await expectCode(unlock(store, { passphrase: 'wrong' }), 'E_WRONG_PASSWORD');
    expect(err.hint).toMatch(/key-file/);
  });

  it('tells a key-file user that only password keys exist', async () => {
    const { store } = await newTestRepo();
    const err = await expectCode(unlock(store, { keyFileBytes: KEY_FILE }), 'E_WRONG_PASSWORD');
    expect(err.hint).toMatch(/password/);
  });

  it('lists keys oldest first with kind, host and user', async () => {
    const { repo, store } = await newTestRepo();
    const later = await addKey(store, repo.master, { keyFileBytes: KEY_FILE }, meta('2027-06-01T00:00:00.000Z', 'h3', 'carol'), random);
    const middle = await addKey(store, repo.master, { passphrase: 'x' }, meta('2027-01-01T00:00:00.000Z'), random, { scrypt: SMALL_SCRYPT });
    const keys = await listKeys(store);
    expect(keys.map(({ id, kind, created, host, username }) => ({ id, kind, created, host, username }))).toEqual([
      { id: repo.keyId, kind: 'password', created: '2026-05-06T07:08:09.000Z', host: 'h', username: 'u' },
      { id: middle, kind: 'password', created: '2027-01-01T00:00:00.000Z', host: 'h2', username: 'bob' },
      { id: later, kind: 'keyfile', created: '2027-06-01T00:00:00.000Z', host: 'h3', username: 'carol' },
    ]);
    expect(keys[2]!.file.kdf.name).toBe('hkdf-sha256');
  });

  it('rejects unlocking a store with no keys with E_KEY', async () => {
    await expectCode(unlock(createMemoryStore(), { passphrase: 'pw' }), 'E_KEY');
  });

  it('refuses to overwrite an existing key file (create-only put)', async () => {
    const store = createMemoryStore();
    const master = newMasterKey(random);
    // The same wrapped bytes twice: only possible with a repeated random stream, so use one.
    const fixed = (n: number): Uint8Array => new Uint8Array(n).fill(3);
    await addKey(store, master, { keyFileBytes: KEY_FILE }, meta('2027-01-01T00:00:00.000Z'), fixed);
    await expectCode(addKey(store, master, { keyFileBytes: KEY_FILE }, meta('2027-01-01T00:00:00.000Z'), fixed), 'E_BLOB_EXISTS');
    expect(await namesOf(store, 'keys')).toHaveLength(1);
  });
});

describe('resolveKeyId', () => {
  const keys = [
    { id: ('abc1' + '0'.repeat(60)) as KeyId, kind: 'password' as const, created: '', host: '', username: '' },
    { id: ('abc2' + '0'.repeat(60)) as KeyId, kind: 'password' as const, created: '', host: '', username: '' },
  ];

  it('resolves a unique prefix', () => {
    expect(resolveKeyId(keys, 'abc2')).toBe(keys[1]!.id);
  });

  it.each([
    ['ambiguous', 'abc', 'E_USAGE'],
    ['unknown', 'ffff', 'E_KEY'],
  ] as const)('rejects an %s prefix', (_label, prefix, code) => {
    expectThrowCode(() => resolveKeyId(keys, prefix), code);
  });
});
