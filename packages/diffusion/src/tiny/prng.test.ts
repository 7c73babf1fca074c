import { fnv1a32, mulberry32, normals } from './prng.js';

describe('tiny bundle PRNG', () => {
  it('hashes with FNV-1a 32 (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('mulberry32 yields uniforms in [0, 1), reproducibly per seed', () => {
    const a = mulberry32(42),
      b = mulberry32(42),
      c = mulberry32(43);
    const xs = Array.from({ length: 10000 }, () => a());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Array.from({ length: 10000 }, () => b())).toEqual(xs);
    expect(c()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01); // sd of the mean: 0.29 / 100
  });

  it('normals are N(0, std^2): mean, variance and tail mass', () => {
    const n = 100000;
    const z = normals('stats', n, 2);
    let s = 0,
      s2 = 0,
      tail = 0;
    for (const v of z) {
      s += v;
      s2 += v * v;
      if (Math.abs(v) > 2 * 1.96) tail++;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03); // sd of the mean: 2 / 316
    expect(Math.sqrt(s2 / n)).toBeCloseTo(2, 1);
    expect(tail / n).toBeCloseTo(0.05, 2);
    expect(normals('stats', 5, 2)).toEqual(z.subarray(0, 5));
    expect(normals('other', 5, 2)).not.toEqual(z.subarray(0, 5));
  });
});
