/** Region sources: attention maps thresholded and upsampled; the finder's class map split per asked subject. */
import { FINDER_CLASSES, FINDER_GRID } from './heads.js';
import { judgeInputs } from './judge-data.js';
import { regionFromAttention, regionsFromFinder, regionsFromSource, upsampleGrid } from './regions.js';
import { withIdentities } from './score.js';

const G = FINDER_GRID,
  S = 64;
const cell = (x: number, y: number) => y * G + x;

/** Finder probabilities with the given cells set to a class (the rest background). */
function finderProbs(cells: Record<string, number[]>): Float32Array {
  const p = new Float32Array(FINDER_CLASSES.length * G * G);
  p.fill(1, 0, G * G);
  for (const [cls, list] of Object.entries(cells))
    for (const c of list) {
      p[c] = 0;
      p[(FINDER_CLASSES as readonly string[]).indexOf(cls) * G * G + c] = 1;
    }
  return p;
}
const mass = (r: Float32Array) => r.reduce((s, v) => s + v, 0);
const at = (r: Float32Array, x: number, y: number) => r[y * S + x]!;

it('an attention map becomes the cells at or above half its maximum, spread to pixels', () => {
  const map = new Float32Array(16);
  map[5] = 0.8; // (1,1)
  map[6] = 0.4; // (2,1): 0.5 of max, kept
  map[10] = 0.39; // (2,2): below, dropped
  const r = regionFromAttention(map, 4);
  expect(mass(r)).toBe(2 * 16 * 16);
  expect(at(r, 16, 16)).toBe(1);
  expect(at(r, 32, 16)).toBe(1);
  expect(at(r, 32, 32)).toBe(0);
  expect(() => regionFromAttention(new Float32Array(15), 4)).toThrow(/4x4/);
});

it('mask sources are validated and scaled to [0, 1]', () => {
  const m = new Uint8Array(S * S).fill(255);
  expect(regionsFromSource({ kind: 'masks', masks: [m] }, 1)[0]![0]).toBe(1);
  expect(() => regionsFromSource({ kind: 'masks', masks: [m] }, 2)).toThrow(/1 region/);
  expect(() => regionsFromSource({ kind: 'masks', masks: [new Uint8Array(10)] }, 1)).toThrow(/4096/);
});

it('the finder: one subject is the foreground; two apart are its two parts, in both assignments', () => {
  const probs = finderProbs({ cat: [cell(2, 2), cell(3, 2)], dog: [cell(10, 10), cell(11, 10), cell(12, 10)] });
  const [[one]] = regionsFromFinder(probs, ['duck']) as [[Float32Array]];
  expect(mass(one)).toBe(5 * 16);
  const candidates = regionsFromFinder(probs, ['cat', 'dog']);
  const [big, small] = candidates[0]!;
  expect(mass(big!)).toBe(3 * 16);
  expect(at(big!, 41, 41)).toBe(1);
  expect(mass(small!)).toBe(2 * 16);
  expect(at(small!, 9, 9)).toBe(1);
  expect(candidates[1]).toEqual([small, big]);
  // then the partitions of the whole foreground (by class, across each axis), each in both assignments
  expect(candidates).toHaveLength(8);
  for (const [a, b] of candidates as [Float32Array, Float32Array][]) expect(mass(a) + mass(b)).toBe(5 * 16);
});

it('the finder: a stray piece of foreground beside two touching subjects does not hide their split', () => {
  // a cat and a dog touching, and one stray foreground cell far away (a piece of the background read as a subject):
  // the two largest parts are the pair and the stray cell, so the pair itself must still be offered split
  const probs = finderProbs({ cat: [cell(4, 5), cell(5, 5)], dog: [cell(6, 5), cell(7, 5)], duck: [cell(14, 14)] });
  const candidates = regionsFromFinder(probs, ['cat', 'dog']);
  const separates = candidates.some(([a, b]) => at(a!, 17, 21) === 1 && at(a!, 25, 21) === 0 && at(b!, 25, 21) === 1 && at(b!, 17, 21) === 0);
  expect(separates).toBe(true);
});

it('the finder: two that touch are offered as partitions of their part: by their classes first, then across each axis', () => {
  const touching = finderProbs({ cat: [cell(4, 5), cell(5, 5)], dog: [cell(6, 5), cell(7, 5)] });
  const split = regionsFromFinder(touching, ['dog', 'cat']);
  // the class split, then the split across columns and across rows, each in both assignments
  expect(split).toHaveLength(6);
  expect(at(split[0]![0]!, 25, 21)).toBe(1); // dog cell (6,5)
  expect(at(split[0]![0]!, 17, 21)).toBe(0);
  expect(at(split[0]![1]!, 17, 21)).toBe(1); // cat cell (4,5)
  expect(split[1]).toEqual([split[0]![1], split[0]![0]]);
  // every candidate is a partition of the foreground: each cell in exactly one region
  const fgMass = 4 * 4 * 4; // 4 cells of 4x4 pixels
  for (const [a, b] of split as [Float32Array, Float32Array][]) {
    expect(mass(a) + mass(b)).toBe(fgMass);
    for (let p = 0; p < S * S; p++) expect(a[p]! * b[p]!).toBe(0);
  }
  const stacked = finderProbs({ dog: [cell(5, 4), cell(5, 5), cell(5, 6), cell(5, 7)] });
  const [[top, bottom], swapped] = regionsFromFinder(stacked, ['dog', 'dog'], 'on top of') as [[Float32Array, Float32Array], Float32Array[]];
  expect(at(top, 21, 17)).toBe(1);
  expect(at(top, 21, 29)).toBe(0);
  expect(at(bottom, 21, 29)).toBe(1);
  expect(swapped).toEqual([bottom, top]);
});

it('upsampleGrid repeats each cell over its block of pixels', () => {
  const up = upsampleGrid([0, 1, 2, 3], 2);
  expect([at(up, 0, 0), at(up, 31, 31), at(up, 32, 0), at(up, 63, 31), at(up, 0, 32), at(up, 63, 63)]).toEqual([0, 0, 1, 1, 2, 3]);
});

it('withIdentities fills what a placeholder prompt leaves out, and keeps what it says', () => {
  const asked = withIdentities({ subjects: [{ action: 'jumping' }, { class: 'dog' }], interaction: 'next to' }, [
    { class: 'cat', colour: 'red', pattern: 'dots', accessory: 'hat' },
    { class: 'box', colour: 'blue', pattern: 'plain', accessory: 'none' },
  ]);
  expect(asked.subjects[0]).toEqual({ class: 'cat', colour: 'red', pattern: 'dots', accessory: 'hat', action: 'jumping' });
  expect(asked.subjects[1]!.class).toBe('dog');
  expect(asked.interaction).toBe('next to');
});

it("the classifier's patch is the render's own pixels around the subject (unresampled), zeros outside the image", () => {
  // a 64 px image whose pixel values encode their position, a subject in the bottom-right corner
  const rgb = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      rgb[(y * S + x) * 3] = x * 4;
      rgb[(y * S + x) * 3 + 1] = y * 4;
      rgb[(y * S + x) * 3 + 2] = (x + y) % 7;
    }
  const region = new Float32Array(S * S);
  for (let y = 50; y < 60; y++) for (let x = 54; x < 62; x++) region[y * S + x] = 1;
  const { patch } = judgeInputs(rgb, region, new Float32Array(S * S));
  const C = 32,
    P = C * C;
  // the box [54, 62) x [50, 60) has its centre at (58, 55): the patch's pixel (i, j) is the image's (42 + i, 39 + j)
  for (const [i, j] of [
    [0, 0],
    [5, 20],
    [21, 24],
  ] as const) {
    const x = 42 + i,
      y = 39 + j;
    for (let c = 0; c < 3; c++) expect(patch[c * P + j * C + i]).toBeCloseTo(rgb[(y * S + x) * 3 + c]! / 127.5 - 1, 6);
    expect(patch[3 * P + j * C + i]).toBe(region[y * S + x]);
  }
  // columns past the image's right edge (x >= 64: i >= 22) and rows past its bottom are zeros, region included
  for (let c = 0; c < 4; c++) {
    expect(patch[c * P + 10 * C + 25]).toBe(0);
    expect(patch[c * P + 30 * C + 3]).toBe(0);
  }
  // the subject's whole region is inside the patch
  let inside = 0;
  for (let k = 0; k < P; k++) inside += patch[3 * P + k]!;
  expect(inside).toBe(80);
});
