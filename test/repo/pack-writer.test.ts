import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { decompress as zstdDecompress } from 'zstd-napi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, decode } from '../../src/core/codec.js';
import { IntegrityError } from '../../src/core/errors.js';
import { IdHasher, plainHash } from '../../src/core/hash.js';
import { BlobType, type BlobTypeId, PACK_PREAMBLE_BYTES, PACK_TRAILER_BYTES, blobAad, headerRange, packKey, packSalt, readPackHeader } from '../../src/core/pack-format.js';
import { open } from '../../src/core/seal.js';
import { BufferPackOutput, type FinishedPack, PACK_SLACK_BYTES, PackBuilder, type PackOutput, encodeBlob } from '../../src/repo/pack-writer.js';
import { hexDump, lowEntropyText, seededRandom, xorshiftBytes } from '../core/fixtures.js';

const DATA_KEY = new Uint8Array(32).fill(0x44);
const HASHER = new IdHasher(new Uint8Array(32).fill(0x45));
const random = (n: number): Uint8Array => randomBytes(n);

interface Blob {
  readonly type: BlobTypeId;
  readonly id: Buffer;
  readonly data: Uint8Array;
}

const blobsOf = (datas: readonly Uint8Array[], type: BlobTypeId = BlobType.data): Blob[] => datas.map((data) => ({ type, id: HASHER.raw(data), data }));

async function build(blobs: readonly Blob[], rnd = random, target = 1 << 30): Promise<FinishedPack> {
  const b = new PackBuilder(DATA_KEY, rnd, target);
  for (const blob of blobs) {
    const enc = await encodeBlob(blob.type, blob.data, { codec: 'zstd', level: 1 });
    b.addEncoded(blob.type, blob.id, enc.codec, enc.bytes, blob.data.length);
  }
  return b.finish()!;
}

/** Reads a pack as a stranger would: preamble → salt, trailer → header, header → blobs. */
async function parsePack(bytes: Buffer): Promise<{ id: string; type: number; offset: number; data: Uint8Array }[]> {
  const salt = packSalt(bytes.subarray(0, PACK_PREAMBLE_BYTES));
  const key = packKey(DATA_KEY, salt);
  const h = headerRange(bytes.subarray(bytes.length - PACK_TRAILER_BYTES), bytes.length);
  const entries = readPackHeader(key, bytes.subarray(h.offset, h.offset + h.length), h.offset);
  const out = [];
  for (const e of entries) {
    const plain = open(key, bytes.subarray(e.offset, e.offset + e.length), blobAad(e.type, e.id));
    const data = await decode(plain[0]!, plain.subarray(1), e.rawLength);
    out.push({ id: Buffer.from(e.id).toString('hex'), type: e.type, offset: e.offset, data });
  }
  return out;
}

/** Opens nonce ‖ AES-256-GCM ciphertext ‖ tag (docs/format.md §6.2). */
function gcmOpen(key: Uint8Array, sealed: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
}

/** Reads a pack by docs/format.md §7 alone (no cairn code): every blob, verified against its id. */
async function readPackBySpec(bytes: Buffer, dataKey: Uint8Array, idKey: Uint8Array): Promise<Map<string, { type: number; data: Buffer }>> {
  expect(bytes.subarray(0, 4).toString('latin1')).toBe('CRNP');
  expect(Array.from(bytes.subarray(4, 8))).toEqual([1, 0, 0, 0]);
  const key = Buffer.from(hkdfSync('sha256', dataKey, bytes.subarray(8, 24), 'cairn pack v1', 32));
  expect(bytes.subarray(bytes.length - 4).toString('latin1')).toBe('CRNE');
  const lh = bytes.readUInt32LE(bytes.length - 8);
  const h = bytes.length - 8 - lh;
  const header = gcmOpen(key, bytes.subarray(h, h + lh), Buffer.from('cairn pack header v1'));
  const count = header.readUInt32LE(0);
  expect(header.length).toBe(4 + 45 * count);
  const out = new Map<string, { type: number; data: Buffer }>();
  let expectedOffset = 24;
  for (let i = 0; i < count; i++) {
    const e = header.subarray(4 + 45 * i, 4 + 45 * (i + 1));
    const [type, id, offset, length, rawLength] = [e[0]!, e.subarray(1, 33), e.readUInt32LE(33), e.readUInt32LE(37), e.readUInt32LE(41)];
    expect(offset).toBe(expectedOffset);
    expectedOffset += length;
    const plain = gcmOpen(key, bytes.subarray(offset, offset + length), Buffer.concat([Buffer.of(type), id]));
    const body = plain.subarray(1);
    const data = plain[0] === 0 ? body : plain[0] === 2 ? zstdDecompress(body) : Buffer.alloc(0);
    expect(data.length).toBe(rawLength);
    const hasher = Blake3Hasher.newKeyed(Buffer.from(idKey));
    hasher.update(data);
    expect(hasher.digest('hex')).toBe(id.toString('hex'));
    out.set(id.toString('hex'), { type, data });
  }
  expect(expectedOffset).toBe(h);
  return out;
}

describe('PackBuilder', () => {
  it('drops the whole pack when its output fails, and starts the next one clean (preamble first)', async () => {
    const inner = new BufferPackOutput(64 << 20);
    let failAppend = false;
    let failEnd = false;
    const appended: number[] = [];
    const flaky: PackOutput<FinishedPack> = {
      append: (pieces, length, reserve) => {
        if (failAppend) throw new Error('ENOSPC: no space left on device');
        appended.push(length);
        inner.append(pieces, length, reserve);
      },
      end: (footer, salt, entries) => {
        if (failEnd) throw new Error('EIO: i/o error');
        return inner.end(footer, salt, entries);
      },
      discard: () => inner.discard(),
    };
    const b = new PackBuilder<FinishedPack>(DATA_KEY, random, 64 << 20, flaky);
    const id = (i: number): Uint8Array => new Uint8Array(32).fill(i);
    b.add(BlobType.data, id(1), 0, Buffer.from('first'), 5);
    failAppend = true;
    expect(() => b.add(BlobType.data, id(2), 0, Buffer.from('second'), 6)).toThrow('ENOSPC');
    expect(b.count).toBe(0);
    expect(b.finish()).toBeUndefined();
    failAppend = false;
    b.add(BlobType.data, id(3), 0, Buffer.from('third'), 5);
    // the new pack's first append carries its preamble
    expect(appended.at(-1)).toBe(PACK_PREAMBLE_BYTES + 1 + 5 + 28);
    failEnd = true;
    expect(() => b.finish()).toThrow('EIO');
    expect(b.count).toBe(0);
    failEnd = false;
    b.add(BlobType.data, id(4), 0, Buffer.from('fourth'), 6);
    const pack = b.finish()!;
    expect(pack.entries.map((e) => e.id[0])).toEqual([4]);
    expect((await parsePack(pack.bytes)).length).toBe(1);
  });

  it('builds packs that a reader written from docs/format.md §7 opens and verifies', async () => {
    const blobs = blobsOf([lowEntropyText(30_000), xorshiftBytes(4000, 9), Buffer.from('short')]);
    const pack = await build(blobs);
    const read = await readPackBySpec(pack.bytes, DATA_KEY, new Uint8Array(32).fill(0x45));
    expect(read.size).toBe(3);
    for (const b of blobs) expect(Buffer.compare(read.get(b.id.toString('hex'))!.data, b.data)).toBe(0);
    const codecs = pack.entries.map((e) => open(packKey(DATA_KEY, pack.salt), pack.bytes.subarray(e.offset, e.offset + e.length), blobAad(e.type, e.id))[0]);
    expect(codecs.sort()).toEqual([Codec.none, Codec.none, Codec.zstd]);
  });

  it('builds a pack that parses back, blob by blob, from its own header', async () => {
    const blobs = blobsOf([xorshiftBytes(5000, 1), lowEntropyText(20_000), new Uint8Array(10), xorshiftBytes(70_000, 2), lowEntropyText(300)]);
    const pack = await build(blobs);
    expect(pack.packId).toBe(plainHash(pack.bytes));
    expect(Buffer.from(packSalt(pack.bytes)).equals(Buffer.from(pack.salt))).toBe(true);
    const parsed = await parsePack(pack.bytes);
    expect(parsed.map((p) => p.id).sort()).toEqual(blobs.map((b) => b.id.toString('hex')).sort());
    for (const p of parsed) {
      const blob = blobs.find((b) => b.id.toString('hex') === p.id)!;
      expect(Buffer.compare(p.data, blob.data)).toBe(0);
      expect(p.type).toBe(BlobType.data);
    }
    expect(parsed.map((p) => p.offset)).toEqual(pack.entries.map((e) => e.offset));
  });

  it('packs blobs back to back between the preamble and the header', async () => {
    const pack = await build(blobsOf([xorshiftBytes(1000, 3), xorshiftBytes(2000, 4), xorshiftBytes(3000, 5)]));
    let offset = PACK_PREAMBLE_BYTES;
    for (const e of pack.entries) {
      expect(e.offset).toBe(offset);
      offset += e.length;
    }
    const h = headerRange(pack.bytes.subarray(pack.bytes.length - 8), pack.bytes.length);
    expect(h.offset).toBe(offset);
    expect(pack.bytes.length).toBe(offset + h.length + PACK_TRAILER_BYTES);
  });

  it('round-trips any set of blobs (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 12, selector: (d) => Buffer.from(d).toString('hex') }), fc.boolean(), async (datas, tree) => {
        const blobs = blobsOf(datas, tree ? BlobType.tree : BlobType.data);
        const parsed = await parsePack((await build(blobs)).bytes);
        expect(new Map(parsed.map((p) => [p.id, Buffer.from(p.data).toString('hex')]))).toEqual(new Map(blobs.map((b) => [b.id.toString('hex'), Buffer.from(b.data).toString('hex')])));
      }),
      { numRuns: 40 },
    );
  });

  it('writes blobs in the order they are added, each right after the one before', async () => {
    const blobs = blobsOf(Array.from({ length: 20 }, (_, i) => xorshiftBytes(100 + i, i + 1)));
    const pack = await build(blobs);
    expect(pack.entries.map((e) => Buffer.from(e.id).toString('hex'))).toEqual(blobs.map((b) => b.id.toString('hex')));
    let at = PACK_PREAMBLE_BYTES;
    for (const e of pack.entries) {
      expect(e.offset).toBe(at);
      at += e.length;
    }
  });

  it('grows its buffer as blobs come, keeping what is written', async () => {
    const asked: number[] = [];
    const b = new PackBuilder(DATA_KEY, random, 64 << 20, new BufferPackOutput((64 << 20) + PACK_SLACK_BYTES, (n) => (asked.push(n), Buffer.allocUnsafeSlow(n))));
    const blobs = blobsOf(Array.from({ length: 40 }, (_, i) => xorshiftBytes(50_000 + i, i + 100)));
    for (const blob of blobs) b.addEncoded(blob.type, blob.id, Codec.none, blob.data, blob.data.length);
    const pack = b.finish()!;
    // 40 × ~50 KB: a first buffer of 256 KiB, then doublings
    expect(asked[0]).toBe(256 * 1024);
    expect(asked.length).toBeGreaterThan(2);
    for (let i = 1; i < asked.length; i++) expect(asked[i]).toBe(2 * asked[i - 1]!);
    const parsed = await parsePack(pack.bytes);
    expect(parsed.map((p) => p.id)).toEqual(blobs.map((x) => x.id.toString('hex')));
    parsed.forEach((p, i) => expect(Buffer.from(p.data).equals(Buffer.from(blobs[i]!.data))).toBe(true));
  });

  it('writes into the buffer its allocator gives, from offset 0', () => {
    const spare = Buffer.allocUnsafeSlow((1 << 20) + PACK_SLACK_BYTES);
    const b = new PackBuilder(DATA_KEY, random, 1 << 20, new BufferPackOutput((1 << 20) + PACK_SLACK_BYTES, () => spare));
    const body = xorshiftBytes(5000, 3);
    b.addEncoded(BlobType.data, HASHER.raw(body), Codec.none, body, body.length);
    const pack = b.finish()!;
    expect(pack.bytes.buffer).toBe(spare.buffer);
    expect(pack.bytes.byteOffset).toBe(0);
    expect(pack.bytes.length).toBe(PACK_PREAMBLE_BYTES + 1 + 5000 + 28 + 28 + 4 + 45 + PACK_TRAILER_BYTES);
  });

  it('add() closes the pack before a blob that does not fit, and after a blob that fills it', async () => {
    const target = 1 << 20;
    const b = new PackBuilder(DATA_KEY, random, target);
    const small = xorshiftBytes(300_000, 21);
    const big = xorshiftBytes(target + PACK_SLACK_BYTES - 200_000, 22);
    const third = xorshiftBytes(1000, 23);
    expect(b.add(BlobType.data, HASHER.raw(small), Codec.none, small, small.length)).toEqual({ sealed: 1 + 300_000 + 28, closed: [] });
    // the big one would take the pack past target + slack: its pack closes first; the big one
    // then fills the next pack, which closes after it
    const second = b.add(BlobType.data, HASHER.raw(big), Codec.none, big, big.length);
    expect(second.closed).toHaveLength(2);
    expect(second.closed.map((p) => p.entries.map((e) => Buffer.from(e.id).toString('hex')))).toEqual([[HASHER.raw(small).toString('hex')], [HASHER.raw(big).toString('hex')]]);
    expect(b.add(BlobType.data, HASHER.raw(third), Codec.none, third, third.length).closed).toEqual([]);
    expect(b.count).toBe(1);
    for (const pack of second.closed) expect((await parsePack(pack.bytes)).length).toBe(1);
  });

  it('fits a blob while the pack stays within target + slack, and any blob in an empty pack', () => {
    const target = 1 << 20;
    const b = new PackBuilder(DATA_KEY, random, target);
    const big = xorshiftBytes(PACK_SLACK_BYTES + target, 4);
    expect(b.fits(big.length)).toBe(true);
    const body = xorshiftBytes(target - 100, 5);
    b.addEncoded(BlobType.data, HASHER.raw(body), Codec.none, body, body.length);
    // what is left below target + slack, less the next blob's overhead and the header of 2 entries
    const left = target + PACK_SLACK_BYTES - (PACK_PREAMBLE_BYTES + 1 + body.length + 28) - (28 + 1) - (28 + 4 + 2 * 45 + PACK_TRAILER_BYTES);
    expect(b.fits(left)).toBe(true);
    expect(b.fits(left + 1)).toBe(false);
    const rest = xorshiftBytes(left, 6);
    b.addEncoded(BlobType.data, HASHER.raw(rest), Codec.none, rest, rest.length);
    expect(b.finish()!.bytes.length).toBe(target + PACK_SLACK_BYTES);
  });

  it('refuses a blob with a flipped byte, and a blob opened under another id', async () => {
    const blobs = blobsOf([xorshiftBytes(500, 6), xorshiftBytes(600, 7)]);
    const pack = await build(blobs);
    const key = packKey(DATA_KEY, pack.salt);
    const [e0, e1] = pack.entries;
    for (let at = e0!.offset; at < e0!.offset + e0!.length; at += 37) {
      const bad = Buffer.from(pack.bytes);
      bad[at]! ^= 0x20;
      expect(() => open(key, bad.subarray(e0!.offset, e0!.offset + e0!.length), blobAad(e0!.type, e0!.id))).toThrow(IntegrityError);
    }
    expect(() => open(key, pack.bytes.subarray(e0!.offset, e0!.offset + e0!.length), blobAad(e1!.type, e1!.id))).toThrow(IntegrityError);
    expect(() => open(key, pack.bytes.subarray(e0!.offset, e0!.offset + e0!.length), blobAad(BlobType.tree, e0!.id))).toThrow(IntegrityError);
  });

  it('reports full once the sealed bytes reach the target', async () => {
    const b = new PackBuilder(DATA_KEY, random, 1000);
    const body = xorshiftBytes(480, 8);
    expect(b.addEncoded(BlobType.data, HASHER.raw(body), Codec.none, body, body.length)).toBe(1 + 480 + 28);
    expect([b.count, b.bufferedBytes, b.full]).toEqual([1, 509, false]);
    b.addEncoded(BlobType.data, HASHER.raw(body.subarray(1)), Codec.none, body.subarray(1), 479);
    expect([b.count, b.bufferedBytes, b.full]).toEqual([2, 1017, true]);
  });

  it('returns undefined for an empty pack, and starts each pack with a new salt', async () => {
    const b = new PackBuilder(DATA_KEY, random, 1 << 20);
    expect(b.finish()).toBeUndefined();
    const body = Buffer.from('x');
    b.addEncoded(BlobType.data, HASHER.raw(body), Codec.none, body, 1);
    const p1 = b.finish()!;
    expect([b.count, b.bufferedBytes]).toEqual([0, 0]);
    b.addEncoded(BlobType.data, HASHER.raw(body), Codec.none, body, 1);
    const p2 = b.finish()!;
    expect(Buffer.from(p1.salt).equals(Buffer.from(p2.salt))).toBe(false);
    expect(p1.packId).not.toBe(p2.packId);
  });

  it('keeps its own copy of each id', () => {
    const b = new PackBuilder(DATA_KEY, random, 1 << 20);
    const id = Buffer.alloc(32, 1);
    b.addEncoded(BlobType.data, id, Codec.none, Buffer.from('x'), 1);
    id.fill(2);
    expect(Buffer.from(b.finish()!.entries[0]!.id).equals(Buffer.alloc(32, 1))).toBe(true);
  });

  it('matches the golden file (format v1)', async () => {
    const rnd = seededRandom(2026);
    const b = new PackBuilder(DATA_KEY, rnd, 1 << 20);
    for (const [type, text] of [[BlobType.data, 'first blob'], [BlobType.data, 'second blob'], [BlobType.tree, '{"nodes":[]}']] as const) {
      b.addEncoded(type, HASHER.raw(Buffer.from(text)), Codec.none, Buffer.from(text), text.length);
    }
    const pack = b.finish()!;
    await expect(`pack id ${pack.packId}\n` + hexDump(pack.bytes)).toMatchFileSnapshot('./__golden__/pack.hex');
  });
});

describe('encodeBlob', () => {
  const text = lowEntropyText(50_000);

  it.each([
    ['data', BlobType.data, { codec: 'lz4', level: 1 }, Codec.lz4],
    ['data', BlobType.data, { codec: 'zstd', level: 1 }, Codec.zstd],
    ['data', BlobType.data, { codec: 'none', level: 1 }, Codec.none],
    ['tree', BlobType.tree, { codec: 'lz4', level: 1 }, Codec.zstd],
    ['tree', BlobType.tree, { codec: 'zstd', level: 1 }, Codec.zstd],
    ['tree', BlobType.tree, { codec: 'none', level: 1 }, Codec.none],
  ] as const)('encodes a %s blob under %o with codec byte %i', async (_label, type, params, codec) => {
    const enc = await encodeBlob(type, text, params);
    expect(enc.codec).toBe(codec);
    expect(Buffer.compare(await decode(enc.codec, enc.bytes, text.length), text)).toBe(0);
  });
});
