import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKER_PARAMS } from '../../src/core/chunker.js';
import { DEFAULT_COMPRESSION } from '../../src/core/codec.js';
import { CairnError } from '../../src/core/errors.js';
import { DEFAULT_PACK_TARGET_BYTES, FORMAT_VERSION, type RepoConfig, newRepoConfig, parseRepoConfig } from '../../src/core/repo-config.js';
import { expectThrowCode } from './fixtures.js';

const REPO_ID = '5e'.repeat(32);
const CREATED = new Date('2026-03-04T05:06:07.089Z');
const MiB = 1024 * 1024;

const bytesOf = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('newRepoConfig', () => {
  it('fills in the format v1 defaults', () => {
    expect(newRepoConfig(REPO_ID, CREATED)).toEqual({
      version: 1,
      id: REPO_ID,
      created: '2026-03-04T05:06:07.089Z',
      chunker: { minSizeBytes: 512 * 1024, avgSizeBytes: MiB, maxSizeBytes: 8 * MiB },
      pack: { targetSizeBytes: 16 * MiB },
      compression: { codec: 'zstd', level: 3 },
      diskBlockSizeBytes: MiB,
    });
    expect([FORMAT_VERSION, DEFAULT_PACK_TARGET_BYTES]).toEqual([1, 16 * MiB]);
    expect(newRepoConfig(REPO_ID, CREATED).chunker).toEqual(DEFAULT_CHUNKER_PARAMS);
    expect(newRepoConfig(REPO_ID, CREATED).compression).toEqual(DEFAULT_COMPRESSION);
  });

  it('takes overrides of chunker, compression and pack size', () => {
    const cfg = newRepoConfig(REPO_ID, CREATED, { chunker: { minSizeBytes: 2048, avgSizeBytes: 8192, maxSizeBytes: 65536 }, compression: { codec: 'lz4', level: 1 }, pack: { targetSizeBytes: MiB } });
    expect(cfg.chunker.avgSizeBytes).toBe(8192);
    expect(cfg.compression.codec).toBe('lz4');
    expect(cfg.pack.targetSizeBytes).toBe(MiB);
  });

  it('rejects bad overrides with E_REPO_FORMAT', () => {
    expectThrowCode(() => newRepoConfig(REPO_ID, CREATED, { pack: { targetSizeBytes: 1000 } }), 'E_REPO_FORMAT');
    expectThrowCode(() => newRepoConfig('not-an-id', CREATED), 'E_REPO_FORMAT');
  });

  it('matches the golden file (format v1)', async () => {
    await expect(JSON.stringify(newRepoConfig(REPO_ID, CREATED), null, 2) + '\n').toMatchFileSnapshot('./__golden__/repo-config.json');
  });
});

describe('parseRepoConfig', () => {
  const good: RepoConfig = newRepoConfig(REPO_ID, CREATED);

  it('reads back what newRepoConfig wrote', () => {
    expect(parseRepoConfig(Buffer.from(JSON.stringify(good, null, 2)))).toEqual(good);
  });

  it.each([
    ['not JSON', Buffer.from('{"version":')],
    ['null', bytesOf(null)],
    ['a string', bytesOf('cairn')],
    ['version 2', bytesOf({ ...good, version: 2 })],
    ['version missing', bytesOf({ ...good, version: undefined })],
    ['an id of 63 hex', bytesOf({ ...good, id: REPO_ID.slice(1) })],
    ['an upper-case id', bytesOf({ ...good, id: REPO_ID.toUpperCase() })],
    ['no chunker', bytesOf({ ...good, chunker: undefined })],
    ['a chunker avg not a power of two', bytesOf({ ...good, chunker: { ...good.chunker, avgSizeBytes: 1000000 } })],
    ['no pack', bytesOf({ ...good, pack: undefined })],
    ['a pack target under 1 MiB', bytesOf({ ...good, pack: { targetSizeBytes: MiB - 1 } })],
    ['a pack target over 256 MiB', bytesOf({ ...good, pack: { targetSizeBytes: 256 * MiB + 1 } })],
    ['a fractional pack target', bytesOf({ ...good, pack: { targetSizeBytes: 2 * MiB + 0.5 } })],
    ['no compression', bytesOf({ ...good, compression: undefined })],
    ['an unknown codec', bytesOf({ ...good, compression: { codec: 'brotli', level: 1 } })],
    ['a disk block under 4096', bytesOf({ ...good, diskBlockSizeBytes: 512 })],
    ['a fractional disk block', bytesOf({ ...good, diskBlockSizeBytes: 4096.5 })],
  ])('rejects cairn.json with %s (E_REPO_FORMAT)', (_label, bytes) => {
    const err = expectThrowCode(() => parseRepoConfig(bytes), 'E_REPO_FORMAT');
    expect(err).toBeInstanceOf(CairnError);
  });

  // BUG (src/core/repo-config.ts checkRepoConfig, `cfg.compression.codec in Codec`): `in` also sees
  // Object.prototype, so "toString", "constructor", "hasOwnProperty" … pass as codec names, and
  // encode() then writes Codec["constructor"] (a function) as the codec byte (0 after coercion)
  // while compressing with zstd: blobs that decode() reads as raw. Fix: `Object.hasOwn(Codec, codec)`.
  it.each(['toString', 'constructor', '__proto__'])('rejects the codec name %s inherited from Object.prototype (E_REPO_FORMAT)', (codec) => {
    expectThrowCode(() => parseRepoConfig(bytesOf({ ...good, compression: { codec, level: 1 } })), 'E_REPO_FORMAT');
  });
});
