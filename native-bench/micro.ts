/**
 * Micro benchmarks of the CPU stages of a backup: chunking, keyed BLAKE3, codecs, sealing. Each
 * prints MB/s (1 MB = 1e6 bytes) of input for one core (sync) or for the libuv pool (async).
 * Run: npx tsx native-bench/micro.ts [--mib N]
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import { FastCdcChunker, chunkLengths, deriveGearTable } from '../src/core/chunker.js';
import { decode, encode } from '../src/core/codec.js';
import { GearScanMemory } from '../src/core/gear-scan.js';
import { IdHasher } from '../src/core/hash.js';
import { seal } from '../src/core/seal.js';
import { PackBuilder, sealBatch } from '../src/repo/pack-writer.js';
import { bufferedRandom } from '../src/repo/random.js';
import { textLike } from './lib/micro-data.js';

const mib = Number(process.argv[process.argv.indexOf('--mib') + 1] || 256);
const size = mib * 1024 * 1024;
const random = randomBytes(size);
const text = textLike(size);
const chunks = (buf: Buffer): Buffer[] => {
  const out: Buffer[] = [];
  for (let o = 0; o < buf.length; o += 1024 * 1024) out.push(buf.subarray(o, o + 1024 * 1024));
  return out;
};

async function time(label: string, bytes: number, fn: () => unknown): Promise<void> {
  await fn(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    await fn();
    runs.push(performance.now() - t);
  }
  const best = Math.min(...runs);
  console.log(`| ${label.padEnd(44)} | ${(bytes / 1e6 / (best / 1000)).toFixed(0).padStart(7)} |`);
}

console.log(`\n${new Date().toISOString()} · ${cpus()[0]?.model} × ${availableParallelism()} · node ${process.version} · ${mib} MiB inputs\n`);
console.log('| stage | MB/s |\n|---|---:|');
const gear = deriveGearTable(randomBytes(32));
const chunker = new FastCdcChunker(gear);
await time('FastCDC 512K/1M/8M, random data (1 core)', size, () => chunkLengths(chunker, random));
await time('FastCDC 512K/1M/8M, text-like data (1 core)', size, () => chunkLengths(chunker, text));
// the data in a GearScanMemory, as a backup reads large files: the scan in WebAssembly
for (const [dname, data] of [['random', random], ['text-like', text]] as const) {
  const memory = new GearScanMemory(gear, size, size);
  memory.buffer.set(data);
  const inMemory = new FastCdcChunker(gear, undefined, memory);
  await time(`FastCDC, ${dname} data, wasm scan (1 core)`, size, () => chunkLengths(inMemory, memory.buffer));
}
const hasher = new IdHasher(randomBytes(32));
await time('keyed BLAKE3, 1 MiB blobs (1 core)', size, () => chunks(random).forEach((c) => hasher.raw(c)));
const key = randomBytes(32);
await time('AES-256-GCM seal, 1 MiB blobs (1 core)', size, () => chunks(random).forEach((c) => seal(key, c, randomBytes)));
// a small file's blob as a seal worker packs it (no compression: the per-blob cost around the
// cipher), in 64-blob batches into 16 MiB packs in memory; µs per blob = 4.096 / (MB/s)
{
  const builder = new PackBuilder(key, bufferedRandom(), 16 << 20);
  const ids = randomBytes(64 * 32);
  const lengths = new Array<number>(64).fill(4096);
  const batches = Math.floor(size / (64 * 4096));
  await time('seal + pack 4 KiB blobs, codec none (1 core)', batches * 64 * 4096, () => {
    for (let b = 0; b < batches; b++) sealBatch(builder, { codec: 'none', level: 0 }, ids, lengths, random.subarray(b * 64 * 4096, (b + 1) * 64 * 4096), () => undefined);
  });
}
for (const [name, params] of [['zstd-1', { codec: 'zstd', level: 1 }], ['zstd-3', { codec: 'zstd', level: 3 }], ['lz4', { codec: 'lz4', level: 0 }]] as const) {
  for (const [dname, data] of [['text', text], ['random', random]] as const) {
    await time(`${name} encode ${dname}, 1 MiB, 1 at a time`, size, async () => {
      for (const c of chunks(data)) await encode(c, params);
    });
    await time(`${name} encode ${dname}, 1 MiB, 4 in flight (pool)`, size, async () => {
      const cs = chunks(data);
      for (let i = 0; i < cs.length; i += 4) await Promise.all(cs.slice(i, i + 4).map((c) => encode(c, params)));
    });
  }
  const enc = await Promise.all(chunks(text).map((c) => encode(c, params)));
  const ratio = size / enc.reduce((s, e) => s + e.bytes.length, 0);
  await time(`${name} decode text (ratio ${ratio.toFixed(2)}), 4 in flight`, size, async () => {
    for (let i = 0; i < enc.length; i += 4) await Promise.all(enc.slice(i, i + 4).map((e) => decode(e.codec, e.bytes)));
  });
}
