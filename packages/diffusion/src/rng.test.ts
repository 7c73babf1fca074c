import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDiffusionError } from './errors.js';
import { GaussianRng } from './rng.js';

interface RngCase {
  seed: string;
  fork: string | null;
  uint32: number[];
  normals: number[];
}
const fixture = JSON.parse(fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/schedulers.json'), 'utf8')) as {
  rng: RngCase[];
};

const N = 100_000;
const sameBytes = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const mean = (xs: ArrayLike<number>): number => {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i]!;
  return sum / xs.length;
};

describe('GaussianRng', () => {
  it.each(fixture.rng)('reproduces the independent Python implementation of the header (seed $seed, fork $fork)', (c) => {
    const base = new GaussianRng(BigInt(c.seed));
    const rng = c.fork === null ? base : base.fork(c.fork);
    const words = new GaussianRng(rng.seed);
    expect(Array.from({ length: c.uint32.length }, () => words.nextUint32())).toEqual(c.uint32);
    // Python uses glibc's libm, V8 its fdlibm port: equal to the last double ulps, identical as float32.
    const normals = Array.from({ length: c.normals.length }, () => rng.normal());
    normals.forEach((z, i) => {
      expect(Math.abs(z - c.normals[i]!)).toBeLessThan(1e-14);
      expect(Math.fround(z)).toBe(Math.fround(c.normals[i]!));
    });
  });

  it('gives identical sequences for the same seed and different ones for different seeds', () => {
    const a = new GaussianRng(1234).fill(4096);
    const b = new GaussianRng(1234).fill(4096);
    const c = new GaussianRng(1235).fill(4096);
    expect(sameBytes(a, b)).toBe(true);
    expect(c.filter((x, i) => x === a[i]).length).toBe(0);
    expect(new GaussianRng(1234n).fill(16)).toEqual(a.subarray(0, 16));
  });

  it('fill(n) is n calls of normal() rounded to float32, pairs included', () => {
    const viaFill = new GaussianRng(7).fill(5);
    const rng = new GaussianRng(7);
    expect(Array.from(viaFill)).toEqual(Array.from({ length: 5 }, () => Math.fround(rng.normal())));
    // A later fill continues with the pending sin half of the third pair.
    const split = new GaussianRng(7);
    const parts = [...split.fill(3), ...split.fill(4)];
    expect(parts).toEqual(Array.from(new GaussianRng(7).fill(7)));
  });

  it('has mean 0 and variance 1 within 5 standard errors, no NaN, and the Gaussian tail mass', () => {
    const z = new GaussianRng(20240601).fill(N);
    expect(z.every(Number.isFinite)).toBe(true);
    const m = mean(z);
    const v = mean(z.map((x) => (x - m) ** 2));
    expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(N)); // sd of the mean is 1/sqrt(n)
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / N)); // sd of the sample variance is sqrt(2/n)
    const tail = z.filter((x) => Math.abs(x) > 1.959964).length / N; // P(|Z| > 1.96) = 0.05
    expect(Math.abs(tail - 0.05)).toBeLessThan(5 * Math.sqrt((0.05 * 0.95) / N));
    // The cos and sin halves of a pair are uncorrelated: lag-1 correlation within 5 standard errors.
    let lag = 0;
    for (let i = 1; i < N; i++) lag += z[i]! * z[i - 1]!;
    expect(Math.abs(lag / (N - 1))).toBeLessThan(5 / Math.sqrt(N));
  });

  it('forks streams that depend only on the seed and label and are uncorrelated with the parent', () => {
    const parent = new GaussianRng(99);
    const early = parent.fork('sample:0').fill(N);
    parent.fill(1001);
    parent.uniform();
    expect(sameBytes(parent.fork('sample:0').fill(N), early)).toBe(true);
    expect(new GaussianRng(99).fork('sample:1').fill(8)).not.toEqual(early.subarray(0, 8));
    expect(new GaussianRng(99).fork(0).fill(8)).toEqual(new GaussianRng(99).fork('0').fill(8));
    const base = new GaussianRng(99).fill(N);
    let dot = 0;
    for (let i = 0; i < N; i++) dot += base[i]! * early[i]!;
    expect(Math.abs(dot / N)).toBeLessThan(5 / Math.sqrt(N));
    // A fork of a fork is again a plain seeded generator.
    const grandchild = new GaussianRng(99).fork('a').fork('b');
    expect(grandchild.fill(4)).toEqual(new GaussianRng(new GaussianRng(99).fork('a').seed).fork('b').fill(4));
  });

  it('draws uniform doubles in [0, 1) and unbiased integers', () => {
    const rng = new GaussianRng(5);
    const u = Array.from({ length: N }, () => rng.uniform());
    expect(u.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
    const counts = [0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < N; i++) counts[rng.uniformInt(7)]!++;
    const p = 1 / 7;
    for (const c of counts) expect(Math.abs(c / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
    expect(rng.uniformInt(1)).toBe(0);
    const big = rng.uniformInt(2 ** 32);
    expect(Number.isInteger(big) && big >= 0 && big < 2 ** 32).toBe(true);
  });

  it('rejects seeds and bounds it cannot honour, naming the value', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, -1n, 1n << 64n]) {
      let error: unknown;
      try {
        new GaussianRng(bad);
      } catch (e) {
        error = e;
      }
      expect(isDiffusionError(error, 'BAD_ARGUMENT')).toBe(true);
    }
    expect(() => new GaussianRng(1).uniformInt(0)).toThrow(/uniformInt bound 0/);
    expect(() => new GaussianRng(1).fill(-2)).toThrow(/fill length -2/);
  });
});
