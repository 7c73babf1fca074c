/** The loss subgraph against the host reference on random inputs (both L_ICA forms, opsets before and from 18). */
import { GaussianRng } from '@dynasyn/diffusion';
import { lossesReference, type LossReferenceInputs } from './losses-reference.js';
import { runLossGraph } from '../testing/loss-graph.js';

function randomInputs(seed: number, icaNormalizeBoth: boolean): LossReferenceInputs {
  const rng = new GaussianRng(seed);
  const C = 4,
    h = 8,
    w = 8,
    hw = 16,
    T = 77,
    K = 3;
  const normal = (n: number) => Array.from({ length: n }, () => rng.normal());
  const unit = (n: number) => Array.from({ length: n }, () => rng.uniform());
  const bits = (n: number) => Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0));
  // attention rows: softmax over the tokens of random logits
  const probs: number[] = [];
  for (let i = 0; i < 2 * hw; i++) {
    const e = normal(T).map((v) => Math.exp(2 * v));
    const s = e.reduce((a, b) => a + b, 0);
    probs.push(...e.map((v) => v / s));
  }
  // subject k's placeholder at position 2k+1 in row 0; in row 1 subjects 1 and 2 only, elsewhere
  const select = new Array<number>(2 * T * K).fill(0);
  for (let k = 0; k < K; k++) select[(0 * T + 2 * k + 1) * K + k] = 1;
  select[(1 * T + 5) * K + 1] = 1;
  select[(1 * T + 9) * K + 2] = 1;
  const mdMask = [...bits(h * w), ...new Array<number>(h * w).fill(0)];
  return {
    prediction: normal(2 * C * h * w),
    target: normal(2 * C * h * w),
    mdMask,
    latentDims: [2, C, h, w],
    attentionProbs: probs,
    hw,
    tokens: T,
    K,
    tokenSelect: select,
    m2aTarget: bits(K * hw),
    icaTarget: unit(K * hw),
    augTarget: unit(K * hw),
    m2aWeight: [1, 0, 1],
    icaWeight: [1, 0, 1],
    augWeight: [0, 1, 1],
    lambdas: [1, 1e-2, 5e-3, 1e-4],
    icaNormalizeBoth,
  };
}

const close = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));

test.each([
  [1, true, 17],
  [2, false, 17],
  [3, true, 18],
])('graph = host reference on random inputs (seed %i, icaNormalizeBoth %s, opset %i)', async (seed, both, opset) => {
  const x = randomInputs(seed, both);
  const got = await runLossGraph(x, opset);
  const want = lossesReference(x);
  for (const k of ['loss', 'md', 'm2a', 'ica', 'aug'] as const) close(got[k], want[k]);
  expect(want.m2a).toBeGreaterThan(0);
  expect(want.aug).toBeGreaterThan(0);
  // selected maps [2, hw, K]
  want.maps.forEach((row, r) => row.forEach((map, k) => map.forEach((v, p) => close(got.attention[(r * x.hw + p) * x.K + k]!, v))));
});
