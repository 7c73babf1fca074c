import { gradcheck } from '../testing/gradcheck.js';
import { DataType } from '../tensor.js';

// DOUBLE inputs: central differences with eps=1e-5 have truncation error ~eps^2*f''' ~ 1e-10 and rounding
// error ~1e-16/eps ~ 1e-11, so 1e-7 relative leaves four orders of margin while catching any wrong rule.
const TOL = 1e-7;
const D = DataType.DOUBLE;

describe('elementwise gradients match central differences', () => {
  test.each([
    ['Add', [2, 3], [3]],
    ['Sub', [2, 1, 3], [4, 1]],
    ['Mul', [2, 3], [2, 3]],
    ['Div', [3, 1], [1, 4]],
  ])('%s broadcasting %j with %j', async (op, a, b) => {
    const out = a.length >= b.length ? a.map((x, i) => Math.max(x, b[i - a.length + b.length] ?? 1)) : [];
    const r = await gradcheck({
      inputs: [{ name: 'a', dtype: D, dims: a }, { name: 'b', dtype: D, dims: b, ...(op === 'Div' ? { values: [1.5, -2, 1.2, 0.8].slice(0, b.reduce((x, y) => x * y, 1)) } : {}) }],
      nodes: [{ op, inputs: ['a', 'b'], outputs: ['y'] }], out: 'y', wrt: ['a', 'b'], outDims: out,
    });
    expect(r.maxError.a).toBeLessThan(TOL);
    expect(r.maxError.b).toBeLessThan(TOL);
  });
});
