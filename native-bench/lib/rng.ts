// Deterministic pseudo-random numbers for the benchmark corpus: never Math.random.
// xoshiro128** seeded through splitmix32; bulk incompressible bytes come from AES-128-CTR keyed by this Rng.
import { createCipheriv } from 'node:crypto';

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const st = { s: seed | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st) | 1;
  }

  /** Uniform unsigned 32-bit integer. */
  u32(): number {
    const b = this.b;
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    this.c ^= this.a;
    this.d ^= b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    const v = items[Math.floor(this.float() * items.length)];
    if (v === undefined) throw new Error('pick from empty list');
    return v;
  }

  /** Log-normal sample with the given median and sigma (of the underlying normal). */
  logNormal(median: number, sigma: number): number {
    const u1 = Math.max(this.float(), 1e-12);
    const u2 = this.float();
    const n = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return median * Math.exp(sigma * n);
  }

  /** Log-uniform sample in [lo, hi]. */
  logUniform(lo: number, hi: number): number {
    return Math.exp(Math.log(lo) + this.float() * (Math.log(hi) - Math.log(lo)));
  }

  /** An independent generator derived from this one. */
  fork(): Rng {
    return new Rng(this.u32() ^ Math.imul(this.u32(), 0x27d4eb2d));
  }

  /** A stream of incompressible bytes (AES-128-CTR of zeros) keyed from this generator. */
  byteStream(): RandomBytes {
    const key = Buffer.alloc(16);
    const iv = Buffer.alloc(16);
    for (let i = 0; i < 4; i++) {
      key.writeUInt32LE(this.u32(), i * 4);
      iv.writeUInt32LE(this.u32(), i * 4);
    }
    return new RandomBytes(key, iv);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const ZEROS = Buffer.alloc(4 << 20);

export class RandomBytes {
  private readonly cipher;

  constructor(key: Buffer, iv: Buffer) {
    this.cipher = createCipheriv('aes-128-ctr', key, iv);
  }

  /** Next n bytes of the stream (a fresh Buffer). */
  next(n: number): Buffer {
    if (n <= ZEROS.length) return this.cipher.update(ZEROS.subarray(0, n));
    const parts: Buffer[] = [];
    for (let left = n; left > 0; left -= ZEROS.length) parts.push(this.cipher.update(ZEROS.subarray(0, Math.min(left, ZEROS.length))));
    return Buffer.concat(parts, n);
  }
}
