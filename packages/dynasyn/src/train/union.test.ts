/**
 * Union sampling frequencies. The seed is fixed, so each assertion is deterministic; the bounds are the
 * ones a correct sampler passes with overwhelming probability for ANY seed (chi-square at p = 0.001,
 * binomial at 5 standard deviations), so a biased sampler cannot pass them by luck of the seed either.
 */
import { GaussianRng } from '@dynasyn/diffusion';
import { drawUnion, placeholderToken, sampleUnion } from './union.js';
import type { Mask, Subject } from '../types.js';

const DRAWS = 30000;

/** Pearson's chi-square statistic of observed counts against equal expected counts. */
function chiSquareUniform(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}
// chi-square quantiles at 0.999 (tables): df 2 -> 13.82, 3 -> 16.27, 5 -> 20.52
const CHI2_999: Record<number, number> = { 2: 13.82, 3: 16.27, 5: 20.52 };

/** |count - n p| within 5 binomial standard deviations. */
function expectBinomial(count: number, n: number, p: number): void {
  expect(Math.abs(count - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
}

describe('drawUnion', () => {
  const N = 3;
  const draws = Array.from({ length: DRAWS }, (_, i) => drawUnion(N, new GaussianRng(7).fork(`step-1-${i}`), 0.5));

  it('draws k uniformly from 1..N (chi-square, 2 df)', () => {
    const counts = [0, 0, 0];
    for (const d of draws) counts[d.subjects.length - 1]!++;
    expect(chiSquareUniform(counts)).toBeLessThan(CHI2_999[2]!);
  });

  it('draws distinct subjects, each in a step with probability E[k]/N = 2/3 (binomial)', () => {
    for (const d of draws) expect(new Set(d.subjects).size).toBe(d.subjects.length);
    for (let i = 0; i < N; i++) expectBinomial(draws.filter((d) => d.subjects.includes(i)).length, DRAWS, 2 / 3);
  });

  it('given k = 2, draws each of the 3 pairs equally often, and each subject first equally often', () => {
    const pairs = new Map<string, number>();
    for (const d of draws.filter((x) => x.subjects.length === 2)) {
      const key = [...d.subjects].sort().join(',');
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
    expect([...pairs.keys()].sort()).toEqual(['0,1', '0,2', '1,2']);
    expect(chiSquareUniform([...pairs.values()])).toBeLessThan(CHI2_999[2]!);
    const first = [0, 0, 0];
    for (const d of draws) first[d.subjects[0]!]!++;
    expect(chiSquareUniform(first)).toBeLessThan(CHI2_999[2]!);
  });

  it('flips with the given probability (binomial), never at 0 and always at 1', () => {
    expectBinomial(draws.filter((d) => d.flip).length, DRAWS, 0.5);
    const rng = new GaussianRng(3);
    const at03 = Array.from({ length: 5000 }, () => drawUnion(2, rng, 0.3).flip).filter(Boolean).length;
    expectBinomial(at03, 5000, 0.3);
    expect(Array.from({ length: 200 }, () => drawUnion(2, rng, 0).flip).some(Boolean)).toBe(false);
    expect(Array.from({ length: 200 }, () => drawUnion(2, rng, 1).flip).every(Boolean)).toBe(true);
  });

  it('is a function of the generator: the same fork gives the same draw', () => {
    const a = drawUnion(5, new GaussianRng(1).fork('step-2-17'), 0.5);
    const b = drawUnion(5, new GaussianRng(1).fork('step-2-17'), 0.5);
    expect(a).toEqual(b);
    // one subject: always k = 1, subject 0
    expect(drawUnion(1, new GaussianRng(9), 0.5).subjects).toEqual([0]);
    expect(() => drawUnion(0, new GaussianRng(9), 0.5)).toThrow(/at least one subject/);
  });
});

describe('sampleUnion', () => {
  // 4x2 masks: subject 0 is the left column, subject 1 the top-right pixel
  const mask = (on: number[]): Mask => ({ width: 4, height: 2, data: Uint8Array.from({ length: 8 }, (_, i) => (on.includes(i) ? 1 : 0)) });
  const subjects: Subject[] = [
    { mask: mask([0, 4]), classWord: 'panda' },
    { mask: mask([3]), classWord: 'bowl' },
  ];

  it('names the drawn subjects in order in both prompts and unions their (flipped) masks', () => {
    let seen = 0;
    const rng = new GaussianRng(11);
    for (let i = 0; i < 64; i++) {
      const s = sampleUnion(subjects, rng.fork(i), 0.5);
      expect(s.prompt).toBe(`a photo of ${s.subjects.map(placeholderToken).join(' and ')}`);
      expect(s.classPrompt).toBe(`a photo of ${s.subjects.map((j) => subjects[j]!.classWord).join(' and ')}`);
      const expected = new Set<number>();
      for (const j of s.subjects) {
        for (const p of j === 0 ? [0, 4] : [3]) expected.add(s.flip ? p - (p % 4) + (3 - (p % 4)) : p);
      }
      expect([...s.unionMask.data].flatMap((v, p) => (v ? [p] : [])).sort()).toEqual([...expected].sort());
      if (s.subjects.length === 2 && s.flip) seen++;
    }
    expect(seen).toBeGreaterThan(0);
  });
});
