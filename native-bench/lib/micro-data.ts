/** Text-like bytes for codec benchmarks: words from a small vocabulary with numbers, like logs
 *  and source code (zstd-1 compresses it about 3-4x). Deterministic. */
export function textLike(size: number): Buffer {
  const words = 'the of and to in is for that with on as at by this from error info debug request user id time value function return const let if else while static public class import export'.split(' ');
  const out = Buffer.allocUnsafe(size);
  let x = 0x9e3779b9;
  let o = 0;
  while (o < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = (x >>> 0) % 7 === 0 ? String((x >>> 0) % 100000) : words[(x >>> 0) % words.length]!;
    o += out.write(((x >>> 0) % 11 === 0 ? '\n' : ' ') + w, o, 'latin1');
  }
  return out;
}
