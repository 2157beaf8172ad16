import { describe, expect, it } from 'vitest';
import { encode } from '../../src/core/codec.js';

// The level is an argument of each call into the reused context (an earlier zstd wrapper dropped
// it, and every call ran at level 3). If the level stops reaching zstd, these sizes become equal.
describe('zstd level reaches the compressor', () => {
  it('a higher level compresses text smaller than level 1', async () => {
    const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu'.split(' ');
    let x = 12345;
    const parts: string[] = [];
    for (let i = 0; i < 60000; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      parts.push(x % 5 === 0 ? String(x % 9973) : words[x % words.length]!);
    }
    const text = Buffer.from(parts.join(' '));
    const l1 = await encode(text, { codec: 'zstd', level: 1 });
    const l9 = await encode(text, { codec: 'zstd', level: 9 });
    expect(l1.codec).toBe(2);
    expect(l9.bytes.length).toBeLessThan(l1.bytes.length * 0.97);
  });
});
