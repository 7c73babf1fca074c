/**
 * The host references against examples computed by hand (2x2 attention grid, 3 tokens, K = 2 subjects),
 * and the loss graph on the same example (the random-input comparison is in losses.test.ts).
 */
import { lossesReference, gReference, type LossReferenceInputs } from './losses-reference.js';
import { classMapTarget } from './class-map.js';
import { runLossGraph } from '../testing/loss-graph.js';

// Row 0 (reference) attention per cell over tokens [t0, t1, t2]; subject 0 is token 1, subject 1 token 2.
const row0 = [
  [0.5, 0.4, 0.1],
  [0.6, 0.2, 0.2],
  [0.8, 0.1, 0.1],
  [0.3, 0.3, 0.4],
];
// Row 1 (augmented): subject 1 is token 1, subject 0 absent.
const row1 = [
  [0.2, 0.3, 0.5],
  [0.2, 0.3, 0.5],
  [0.2, 0.3, 0.5],
  [0.2, 0.3, 0.5],
];
// token_select [2, 3, 2]: [row][token][subject]
const select = [
  [
    [0, 0],
    [1, 0],
    [0, 1],
  ],
  [
    [0, 0],
    [0, 1],
    [0, 0],
  ],
];

const example = (icaNormalizeBoth: boolean, m2aWeight = [1, 1]): LossReferenceInputs => ({
  // C=1, h=1, w=2: row 0 pred [1, 3], target [0, 1], mask [1, 0]; row 1 arbitrary (no MD loss there)
  prediction: [1, 3, 7, 7],
  target: [0, 1, 0, 0],
  mdMask: [1, 0, 0, 0],
  latentDims: [2, 1, 1, 2],
  attentionProbs: [...row0.flat(), ...row1.flat()],
  hw: 4,
  tokens: 3,
  K: 2,
  tokenSelect: select.flat(2),
  m2aTarget: [1, 1, 0, 0, 0, 0, 0, 1],
  m2aWeight,
  icaTarget: [0, 0, 0, 0, 1, 1, 1, 1],
  icaWeight: [1, 0],
  augTarget: [9, 9, 9, 9, 1, 0, 1, 0],
  augWeight: [0, 1],
  lambdas: [1, 0.01, 0.005, 0.0001],
  icaNormalizeBoth,
});

// By hand:
//   L_MD = ((1-0)*1)^2 + ((3-1)*0)^2, over 2 elements = 0.5
//   A_0 = [.4 .2 .1 .3] -> norm [1 .5 .25 .75];  A_1 = [.1 .2 .1 .4] -> norm [.25 .5 .25 1]
//   M2A: subject 0 vs [1 1 0 0]: (0 + .25 + .0625 + .5625)/4 = .21875; subject 1 vs [0 0 0 1]: (.0625 + .25 + .0625 + 0)/4 = .09375
//   ICA (subject 0 vs zeros): normalised (1 + .25 + .0625 + .5625)/4 = .46875; raw (.16 + .04 + .01 + .09)/4 = .075
//   AUG (row 1, subject 1 = token 1 = .3 everywhere): normalised [1 1 1 1] vs [1 0 1 0] -> .5; raw (.49 + .09 + .49 + .09)/4 = .29
const HAND = {
  normalized: { md: 0.5, m2a: 0.3125, ica: 0.46875, aug: 0.5 },
  raw: { md: 0.5, m2a: 0.3125, ica: 0.075, aug: 0.29 },
};
const total = (t: { md: number; m2a: number; ica: number; aug: number }) => t.md + 0.01 * t.m2a + 0.005 * t.ica + 0.0001 * t.aug;

test.each([true, false])('each loss matches the hand-computed example (icaNormalizeBoth %s)', (both) => {
  const want = both ? HAND.normalized : HAND.raw;
  const got = lossesReference(example(both));
  for (const k of ['md', 'm2a', 'ica', 'aug'] as const) expect(got[k]).toBeCloseTo(want[k], 12);
  expect(got.loss).toBeCloseTo(total(want), 12);
  expect(got.maps[0]![0]).toEqual([0.4, 0.2, 0.1, 0.3]);
  expect(got.maps[1]![0]).toEqual([0, 0, 0, 0]); // absent subject: zero column, zero weight
});

test('subjects outside s do not count (weight 0)', () => {
  expect(lossesReference(example(true, [1, 0])).m2a).toBeCloseTo(0.21875, 12);
});

test.each([true, false])('the loss graph gives the hand-computed values (icaNormalizeBoth %s)', async (both) => {
  const x = example(both);
  const got = await runLossGraph(x);
  const want = both ? HAND.normalized : HAND.raw;
  for (const k of ['md', 'm2a', 'ica', 'aug'] as const) expect(got[k]).toBeCloseTo(want[k], 6);
  expect(got.loss).toBeCloseTo(total(want), 6);
});

test('g(M * A) of the class map: masked, divided by its max; zeros when nothing is left', () => {
  const maps = { dims: [1, 4, 3], data: Float32Array.from(row0.flat()) };
  expect([...classMapTarget(maps, 1, [1, 0, 1, 1])]).toEqual([1, 0, 0.25, 0.75].map(Math.fround));
  expect([...classMapTarget(maps, 1, [0, 0, 0, 0])]).toEqual([0, 0, 0, 0]);
  // row 1 of a two-row output, and a class word of two sub-tokens (columns summed)
  const two = { dims: [2, 4, 3], data: Float32Array.from([...row0.flat(), ...row1.flat()]) };
  expect([...classMapTarget(two, [1, 2], [1, 1, 0, 0], 1)]).toEqual([1, 1, 0, 0]);
  expect(gReference([0, 2, 1])).toEqual([0, 1, 0.5]);
  expect(() => classMapTarget(maps, 3, [1, 1, 1, 1])).toThrow(/token index 3/);
  expect(() => classMapTarget(maps, 0, [1, 1])).toThrow(/mask has 2 cells/);
});
