import { createDecipheriv, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CairnError, IntegrityError } from '../../src/core/errors.js';
import { DEFAULT_SCRYPT, type KeyFile, type MasterKey, newMasterKey, parseKeyFile, unwrapMasterKey, wrapMasterKey } from '../../src/core/keys.js';
import { expectCode, seededRandom } from './fixtures.js';

const SMALL_SCRYPT = { N: 1024, r: 8, p: 1 };
const META = { created: new Date('2026-01-02T03:04:05.000Z'), host: 'host-a', username: 'alice' };
const random = (n: number): Uint8Array => randomBytes(n);
const MASTER: MasterKey = newMasterKey(seededRandom(11));
const KEY_FILE_BYTES = new Uint8Array(64).fill(9);

function expectMaster(got: MasterKey, want: MasterKey): void {
  expect(Buffer.from(got.dataKey).equals(Buffer.from(want.dataKey))).toBe(true);
  expect(Buffer.from(got.idKey).equals(Buffer.from(want.idKey))).toBe(true);
}

/** Opens a key file by docs/format.md alone, without src/core/keys.ts. */
function unwrapBySpec(file: KeyFile, secret: { passphrase: string } | { keyFileBytes: Uint8Array }): MasterKey {
  const salt = Buffer.from(file.kdf.salt, 'base64');
  const kek =
    'passphrase' in secret && file.kdf.name === 'scrypt'
      ? scryptSync(secret.passphrase.normalize('NFC'), salt, 32, { N: file.kdf.N, r: file.kdf.r, p: file.kdf.p })
      : Buffer.from(hkdfSync('sha256', (secret as { keyFileBytes: Uint8Array }).keyFileBytes, salt, 'cairn key file v1', 32));
  const sealed = Buffer.from(file.data, 'base64');
  const d = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAAD(Buffer.from('cairn master key v1'));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const json = JSON.parse(Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]).toString('utf8')) as Record<string, string>;
  expect(Object.keys(json).sort()).toEqual(['dataKey', 'idKey']);
  return { dataKey: Buffer.from(json.dataKey!, 'base64'), idKey: Buffer.from(json.idKey!, 'base64') };
}

describe('newMasterKey', () => {
  it('draws a 32-byte data key and a 32-byte id key from the random source', () => {
    const m = newMasterKey(random);
    expect(m.dataKey).toHaveLength(32);
    expect(m.idKey).toHaveLength(32);
    expect(Buffer.from(m.dataKey).equals(Buffer.from(m.idKey))).toBe(false);
  });
});

describe('wrapMasterKey / unwrapMasterKey', () => {
  it('defaults to scrypt N=2^15, r=8, p=1', () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 32768, r: 8, p: 1 });
  });

  it('wraps under a passphrase and unwraps with it', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'correct horse' }, META, random, SMALL_SCRYPT);
    expect(file).toMatchObject({ version: 1, kind: 'password', created: '2026-01-02T03:04:05.000Z', host: 'host-a', username: 'alice' });
    expect(file.kdf).toMatchObject({ name: 'scrypt', N: 1024, r: 8, p: 1 });
    expect(Buffer.from(file.kdf.salt, 'base64')).toHaveLength(16);
    expectMaster(await unwrapMasterKey(file, { passphrase: 'correct horse' }), MASTER);
    expectMaster(unwrapBySpec(file, { passphrase: 'correct horse' }), MASTER);
  });

  it('wraps under a key file (HKDF-SHA256) and unwraps with it', async () => {
    const file = await wrapMasterKey(MASTER, { keyFileBytes: KEY_FILE_BYTES }, META, random);
    expect(file.kind).toBe('keyfile');
    expect(file.kdf.name).toBe('hkdf-sha256');
    expect(Object.keys(file.kdf).sort()).toEqual(['name', 'salt']);
    expectMaster(await unwrapMasterKey(file, { keyFileBytes: KEY_FILE_BYTES }), MASTER);
    expectMaster(unwrapBySpec(file, { keyFileBytes: KEY_FILE_BYTES }), MASTER);
  });

  it('seals 28 bytes of overhead around the key JSON and never stores a key in the clear', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    const text = JSON.stringify(file);
    expect(text).not.toContain(Buffer.from(MASTER.dataKey).toString('base64'));
    expect(text).not.toContain(Buffer.from(MASTER.idKey).toString('base64'));
    const plainLength = JSON.stringify({ dataKey: Buffer.from(MASTER.dataKey).toString('base64'), idKey: Buffer.from(MASTER.idKey).toString('base64') }).length;
    expect(Buffer.from(file.data, 'base64')).toHaveLength(plainLength + 28);
  });

  it('matches the golden key file (format v1)', async () => {
    const file = await wrapMasterKey(newMasterKey(seededRandom(5)), { passphrase: 'golden' }, META, seededRandom(6), SMALL_SCRYPT);
    await expect(JSON.stringify(file, null, 2) + '\n').toMatchFileSnapshot('./__golden__/key-file.json');
    expectMaster(unwrapBySpec(file, { passphrase: 'golden' }), newMasterKey(seededRandom(5)));
  });

  it('uses a fresh salt for every key file', async () => {
    const a = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    const b = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    expect(a.kdf.salt).not.toBe(b.kdf.salt);
    expect(a.data).not.toBe(b.data);
  });

  it('normalizes the passphrase to NFC', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'caf\u00e9' }, META, random, SMALL_SCRYPT);
    expectMaster(await unwrapMasterKey(file, { passphrase: 'cafe\u0301' }), MASTER);
  });

  it('rejects a wrong passphrase with E_WRONG_PASSWORD', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'right' }, META, random, SMALL_SCRYPT);
    const err = await expectCode(unwrapMasterKey(file, { passphrase: 'wrong' }), 'E_WRONG_PASSWORD');
    expect(err.cause).toBeInstanceOf(IntegrityError);
  });

  it('rejects a wrong key file with E_WRONG_PASSWORD', async () => {
    const file = await wrapMasterKey(MASTER, { keyFileBytes: KEY_FILE_BYTES }, META, random);
    await expectCode(unwrapMasterKey(file, { keyFileBytes: new Uint8Array(64).fill(8) }), 'E_WRONG_PASSWORD');
  });

  it.each([0, 16, 31])('rejects a key file of %i bytes with E_KEY, when wrapping and unwrapping', async (n) => {
    await expectCode(wrapMasterKey(MASTER, { keyFileBytes: new Uint8Array(n).fill(1) }, META, random), 'E_KEY');
    const file = await wrapMasterKey(MASTER, { keyFileBytes: KEY_FILE_BYTES }, META, random);
    await expectCode(unwrapMasterKey(file, { keyFileBytes: new Uint8Array(n).fill(1) }), 'E_KEY');
  });

  it('accepts a key file of exactly 32 bytes', async () => {
    const bytes = new Uint8Array(32).fill(2);
    const file = await wrapMasterKey(MASTER, { keyFileBytes: bytes }, META, random);
    expectMaster(await unwrapMasterKey(file, { keyFileBytes: bytes }), MASTER);
  });

  it('refuses a passphrase for a key-file key, and a key file for a password key, saying which is needed', async () => {
    const keyfileKey = await wrapMasterKey(MASTER, { keyFileBytes: KEY_FILE_BYTES }, META, random);
    const e1 = await expectCode(unwrapMasterKey(keyfileKey, { passphrase: 'pw' }), 'E_WRONG_PASSWORD');
    expect(e1.message).toMatch(/key file/);
    const passwordKey = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    const e2 = await expectCode(unwrapMasterKey(passwordKey, { keyFileBytes: KEY_FILE_BYTES }), 'E_WRONG_PASSWORD');
    expect(e2.message).toMatch(/passphrase/);
  });

  it('rejects a key file whose wrapped data was altered with E_WRONG_PASSWORD', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    const data = Buffer.from(file.data, 'base64');
    data[20]! ^= 1;
    await expectCode(unwrapMasterKey({ ...file, data: data.toString('base64') }, { passphrase: 'pw' }), 'E_WRONG_PASSWORD');
  });
});

describe('parseKeyFile', () => {
  it('reads back a key file serialized as JSON', async () => {
    const file = await wrapMasterKey(MASTER, { passphrase: 'pw' }, META, random, SMALL_SCRYPT);
    const parsed = parseKeyFile(Buffer.from(JSON.stringify(file, null, 2)));
    expect(parsed).toEqual(file);
    expectMaster(await unwrapMasterKey(parsed, { passphrase: 'pw' }), MASTER);
  });

  it.each([
    ['not JSON', '{'],
    ['version 2', JSON.stringify({ version: 2, kind: 'password', kdf: { name: 'scrypt' }, data: '' })],
    ['no data', JSON.stringify({ version: 1, kind: 'password', kdf: { name: 'scrypt' } })],
    ['no kdf', JSON.stringify({ version: 1, kind: 'password', data: '' })],
    ['unknown kind', JSON.stringify({ version: 1, kind: 'token', kdf: { name: 'scrypt' }, data: '' })],
  ])('rejects %s with IntegrityError', (_label, text) => {
    let err: unknown;
    try {
      parseKeyFile(Buffer.from(text));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).code).toBe('E_INTEGRITY');
  });

  // BUG (src/core/keys.ts parseKeyFile): a key file holding JSON `null` (or any non-object)
  // throws a TypeError from `k.version` instead of IntegrityError, so `unlock` crashes on one
  // damaged key file. Fix: `if (typeof v !== 'object' || v === null) throw new IntegrityError(...)`.
  it('rejects a key file holding JSON null with IntegrityError', () => {
    let err: unknown;
    try {
      parseKeyFile(Buffer.from('null'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IntegrityError);
  });
});
