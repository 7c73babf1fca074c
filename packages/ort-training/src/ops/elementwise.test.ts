import { buildModel, gradcheck, randomValues, run, session, type TestInput, type TestNode } from '../testing/gradcheck.js';
import { deriveGradientGraph } from '../autodiff.js';
import { inferTypes } from '../infer.js';
import type { AttrValue } from '../graph.js';
import { DataType, fromNumbers, numel, toNumbers, type HostTensor } from '../tensor.js';

// DOUBLE inputs: central differences with eps=1e-5 have truncation error ~eps^2*f''' ~ 1e-10 and rounding
// error ~1e-16/eps ~ 1e-11, so 1e-7 relative leaves four orders of margin while catching any wrong rule.
const TOL = 1e-7;
// FLOAT (ops whose onnxruntime CPU kernel is float only): eps=1e-2, so truncation error ~eps^2/6*|f'''| ~ 2e-5
// per element and float rounding of the loss ~1e-7*|loss|/eps ~ 1e-5 (observed: at most 6e-5); a wrong rule is off by O(1e-1).
const FTOL = 5e-4;
const D = DataType.DOUBLE,
  F = DataType.FLOAT;

const values = (n: number, seed: number, lo = -1, hi = 1) => randomValues(n, seed, lo, hi);
/** Random values at least `gap` away from each kink, so that a central difference never straddles one. */
const awayFrom = (kinks: number[], n: number, seed: number, gap = 0.05) =>
  values(n, seed, -4, 4).map((v) => {
    for (const k of kinks) if (Math.abs(v - k) < gap) v = k + (v < k ? -gap : gap);
    return v;
  });

interface Case {
  op: string;
  inputs: TestInput[];
  wrt?: string[];
  attrs?: Record<string, AttrValue | undefined>;
  opset?: number;
  outDims: number[];
  dtype?: number;
  constants?: Record<string, HostTensor>;
  nodeInputs?: string[];
}

async function check(c: Case) {
  const dtype = c.dtype ?? D;
  const r = await gradcheck({
    inputs: c.inputs.map((i) => ({ dtype, ...i })),
    constants: c.constants,
    opset: c.opset,
    outDims: c.outDims,
    outDtype: dtype,
    nodes: [{ op: c.op, inputs: c.nodeInputs ?? c.inputs.map((i) => i.name), outputs: ['y'], attrs: c.attrs }],
    out: 'y',
    wrt: c.wrt ?? c.inputs.map((i) => i.name),
  });
  for (const w of c.wrt ?? c.inputs.map((i) => i.name)) expect(r.maxError[w]).toBeLessThan(dtype === D ? TOL : FTOL);
  return r;
}

describe('broadcasting arithmetic gradients match central differences', () => {
  test.each([
    ['Add', [2, 3], [3]],
    ['Sub', [2, 1, 3], [4, 1]],
    ['Mul', [2, 3], [2, 3]],
    ['Div', [3, 1], [1, 4]],
  ])('%s broadcasting %j with %j', async (op, a, b) => {
    const out = a.length >= b.length ? a.map((x, i) => Math.max(x, b[i - a.length + b.length] ?? 1)) : [];
    await check({
      op,
      outDims: out,
      inputs: [
        { name: 'a', dims: a },
        { name: 'b', dims: b, ...(op === 'Div' ? { values: [1.5, -2, 1.2, 0.8].slice(0, numel(b)) } : {}) },
      ],
    });
  });

  test('Pow: base [2,3] and exponent [3], both differentiated (base > 0)', async () => {
    await check({
      op: 'Pow',
      outDims: [2, 3],
      inputs: [
        { name: 'a', dims: [2, 3], values: values(6, 1, 0.2, 2) },
        { name: 'p', dims: [3], values: [0.5, 2.5, -1.3] },
      ],
    });
  });
  test.each([[2], [3], [1], [-0.5]])('Pow with constant exponent %d (negative base allowed for integer powers)', async (k) => {
    const neg = Number.isInteger(k);
    await check({
      op: 'Pow',
      outDims: [2, 3],
      wrt: ['a'],
      inputs: [{ name: 'a', dims: [2, 3], values: values(6, 2, neg ? -2 : 0.2, 2) }],
      constants: { p: fromNumbers(D, [], [k]) },
      nodeInputs: ['a', 'p'],
    });
  });
  test('Pow with an int64 exponent', async () => {
    await check({
      op: 'Pow',
      outDims: [2, 3],
      wrt: ['a'],
      inputs: [{ name: 'a', dims: [2, 3] }],
      constants: { p: fromNumbers(DataType.INT64, [1], [3]) },
      nodeInputs: ['a', 'p'],
    });
  });
  test('Mod (fmod=1, float): gradients to dividend and divisor', async () => {
    // a/b stays strictly between integers under the perturbation
    await check({
      op: 'Mod',
      attrs: { fmod: 1 },
      outDims: [2, 3],
      inputs: [
        { name: 'a', dims: [2, 3], values: [2.3, -2.3, 5.1, -0.4, 3.7, 7.3] },
        { name: 'b', dims: [3], values: [1.5, 0.7, -2] },
      ],
    });
  });
  test('Where: condition [2,1] selects between x [2,3] and y [3]', async () => {
    await check({
      op: 'Where',
      outDims: [2, 3],
      inputs: [
        { name: 'a', dims: [2, 3] },
        { name: 'b', dims: [3] },
      ],
      constants: { c: fromNumbers(DataType.BOOL, [2, 1], [1, 0]) },
      nodeInputs: ['c', 'a', 'b'],
    });
  });
  test('Max of three inputs [2,3], [3], [2,1]', async () => {
    await check({
      op: 'Max',
      outDims: [2, 3],
      inputs: [
        { name: 'a', dims: [2, 3] },
        { name: 'b', dims: [3] },
        { name: 'c', dims: [2, 1] },
      ],
    });
  });
  test('Min with ties: a two-way tie shares the gradient equally, as the central difference sees it', async () => {
    const r = await check({
      op: 'Min',
      outDims: [2, 3],
      inputs: [
        { name: 'a', dims: [2, 3], values: [0.5, -0.2, 0.3, 0.9, 0.1, -0.7] },
        { name: 'b', dims: [2, 3], values: [0.5, 0.4, -0.3, 0.9, 0.1, 0.2] },
      ],
    });
    expect(r.analytic.a![0]).toBeCloseTo(r.analytic.b![0]!, 12);
  });
  test('Max with a single input is the identity', async () => {
    await check({ op: 'Max', outDims: [2, 3], inputs: [{ name: 'a', dims: [2, 3] }] });
  });
  test('Clip with min and max inputs, both differentiated', async () => {
    await check({
      op: 'Clip',
      outDims: [2, 3],
      inputs: [
        { name: 'x', dims: [2, 3], values: [-0.9, -0.1, 0.2, 0.7, 0.45, -0.5] },
        { name: 'lo', dims: [], values: [-0.4] },
        { name: 'hi', dims: [], values: [0.5] },
      ],
    });
  });
  test('Clip with max only', async () => {
    await check({
      op: 'Clip',
      outDims: [2, 3],
      inputs: [
        { name: 'x', dims: [2, 3], values: [-0.9, -0.1, 0.2, 0.7, 0.45, -0.5] },
        { name: 'hi', dims: [], values: [0.3] },
      ],
      nodeInputs: ['x', '', 'hi'],
    });
  });
  test('PRelu with a slope [3,1,1] broadcast over x [2,3,2,2] (float kernel only)', async () => {
    await check({
      op: 'PRelu',
      dtype: F,
      outDims: [2, 3, 2, 2],
      inputs: [
        { name: 'x', dims: [2, 3, 2, 2], values: awayFrom([0], 24, 3) },
        { name: 's', dims: [3, 1, 1] },
      ],
    });
  });
});

describe('unary gradients match central differences', () => {
  const x = (lo = -1, hi = 1, seed = 5): TestInput => ({ name: 'x', dims: [2, 3, 2], values: values(12, seed, lo, hi) });
  test.each<[string, TestInput, Record<string, AttrValue>?]>([
    ['Sqrt', x(0.1, 3)],
    ['Exp', x(-2, 2)],
    ['Log', x(0.1, 3)],
    ['Reciprocal', x(0.3, 2)],
    ['Abs', x()],
    ['Sin', x(-3, 3)],
    ['Cos', x(-3, 3)],
    ['Sigmoid', x(-4, 4)],
    ['Tanh', x(-2, 2)],
    ['Relu', x()],
    ['Neg', x()],
    ['Identity', x()],
  ])('%s (double)', async (...[op, inp, attrs]) => {
    await check({ op, outDims: inp.dims, inputs: [inp], attrs });
  });

  // onnxruntime has float kernels only for these; inputs avoid the kinks by more than the step 1e-2
  const k0: TestInput = { name: 'x', dims: [2, 3, 2], values: awayFrom([0], 12, 9) };
  test.each<[string, TestInput, Record<string, AttrValue>?, number?]>([
    ['Erf', x(-2, 2)],
    ['LeakyRelu', k0, { alpha: { float: 0.1 } }],
    ['Elu', k0, { alpha: { float: 0.7 } }],
    ['Selu', k0],
    ['Softplus', x(-4, 4)],
    ['HardSigmoid', { name: 'x', dims: [2, 3, 2], values: awayFrom([-2.5, 2.5], 12, 4) }],
    ['HardSwish', { name: 'x', dims: [2, 3, 2], values: awayFrom([-3, 3], 12, 4) }],
    ['Mish', x(-3, 3), undefined, 18],
    ['Gelu', x(-3, 3), undefined, 20],
    ['Gelu', x(-3, 3), { approximate: 'tanh' }, 20],
  ])('%s (float)', async (...[op, inp, attrs, opset]) => {
    await check({ op, dtype: F, outDims: inp.dims, inputs: [inp], attrs, opset });
  });
});

describe('casts and dropout', () => {
  test('CastLike float -> double passes the gradient back as float', async () => {
    const r = await gradcheck({
      inputs: [{ name: 'x', dtype: F, dims: [2, 3] }],
      constants: { like: fromNumbers(D, [1], [0]) },
      opset: 17,
      nodes: [{ op: 'CastLike', inputs: ['x', 'like'], outputs: ['y'] }],
      out: 'y',
      wrt: ['x'],
      outDims: [2, 3],
      eps: 1e-2,
    });
    expect(r.maxError.x).toBeLessThan(1e-6); // linear: the difference quotient is exact up to float rounding of x
  });
  test('Dropout in inference mode is the identity, with its mask output', async () => {
    await check({ op: 'Dropout', outDims: [2, 3], inputs: [{ name: 'x', dims: [2, 3] }], constants: { r: fromNumbers(D, [], [0.3]) }, nodeInputs: ['x', 'r'] });
  });
  test('Dropout in training mode scales the gradient by mask / (1 - ratio)', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', dtype: F, dims: [4, 8] }],
      opset: 17,
      constants: { r: fromNumbers(F, [], [0.25]), t: fromNumbers(DataType.BOOL, [], [1]) },
      nodes: [
        { op: 'Dropout', inputs: ['x', 'r', 't'], outputs: ['y', 'mask'] },
        { op: 'ReduceSum', inputs: ['y'], outputs: ['loss'], attrs: { keepdims: 0 } },
      ],
      outputs: ['loss'],
    });
    const derived = deriveGradientGraph(model, { loss: 'loss', wrt: ['x'], keepOutputs: ['mask'] });
    const out = await run(await session(derived.model), { x: fromNumbers(F, [4, 8], values(32, 3)) });
    expect(out[derived.gradientOutputs.x!]).toEqual(out.mask!.map((m) => (m ? 1 / 0.75 : 0)).map(Math.fround));
  });
});

describe('constant folding agrees with onnxruntime', () => {
  /** Fold `nodes` with the package's own evaluate rules and run the same graph through onnxruntime. */
  async function compare(spec: {
    nodes: TestNode[];
    inputs?: TestInput[];
    constants: Record<string, HostTensor>;
    out: string;
    opset?: number;
    feeds?: Record<string, HostTensor>;
  }) {
    const model = buildModel({ inputs: spec.inputs ?? [], nodes: spec.nodes, constants: spec.constants, outputs: [spec.out], opset: spec.opset });
    const folded = inferTypes(model.graph, { opset: spec.opset ?? 17 }).values.get(spec.out);
    expect(folded).toBeDefined();
    const ort = (await run(await session(model), spec.feeds ?? {}))[spec.out]!;
    const ours = toNumbers(folded!);
    expect(ours.length).toBe(ort.length);
    ours.forEach((v, i) => expect(v).toBeCloseTo(ort[i]!, 5));
  }
  const t = (dims: number[], v: number[], dtype: number = F) => fromNumbers(dtype, dims, v);

  test('Shape -> Cast -> Sqrt of a graph input folds to the right constant', async () => {
    await compare({
      inputs: [{ name: 'x', dims: [4, 9, 2] }],
      constants: {},
      out: 's',
      feeds: { x: t([4, 9, 2], new Array(72).fill(0)) },
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['shape'] },
        { op: 'Cast', inputs: ['shape'], outputs: ['f'], attrs: { to: F } },
        { op: 'Sqrt', inputs: ['f'], outputs: ['s'] },
      ],
    });
  });
  test.each<[string, string[], Record<string, HostTensor>, Record<string, AttrValue>?]>([
    ['Pow', ['a', 'b'], { a: t([2, 2], [1.5, 2, 3, 0.5]), b: t([2], [2, -0.5]) }],
    ['Mod', ['a', 'b'], { a: t([4], [-7, 7, 5, -5], DataType.INT64), b: t([4], [3, -3, 3, 3], DataType.INT64) }],
    ['Mod', ['a', 'b'], { a: t([3], [-7.5, 7.5, 5.25]), b: t([3], [2, -2, 3]) }, { fmod: 1 }],
    ['Round', ['a'], { a: t([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.6]) }],
    ['Where', ['c', 'a', 'b'], { c: t([2, 1], [1, 0], DataType.BOOL), a: t([3], [1, 2, 3]), b: t([2, 3], [4, 5, 6, 7, 8, 9]) }],
    ['Max', ['a', 'b', 'c'], { a: t([3], [1, 5, 3]), b: t([2, 1], [2, 4]), c: t([], [3.5]) }],
    ['Clip', ['a', 'lo', 'hi'], { a: t([4], [-3, -1, 1, 3], DataType.INT64), lo: t([], [-2], DataType.INT64), hi: t([], [2], DataType.INT64) }],
    ['Sigmoid', ['a'], { a: t([3], [-2, 0, 3]) }],
    ['Softplus', ['a'], { a: t([3], [-2, 0, 40]) }],
    ['IsInf', ['a'], { a: t([3], [Infinity, -Infinity, 1]) }, { detect_negative: 0 }],
    ['Xor', ['a', 'b'], { a: t([4], [1, 1, 0, 0], DataType.BOOL), b: t([4], [1, 0, 1, 0], DataType.BOOL) }],
  ])('%s', async (...[op, ins, constants, attrs]) => {
    // rest parameters: jest reads a longer parameter list as `done`
    await compare({ nodes: [{ op, inputs: ins, outputs: ['y'], attrs }], constants, out: 'y' });
  });
});

describe('SiLU as exported (x * Sigmoid(x)) gets one fused gradient', () => {
  const x = { name: 'x', dtype: D, dims: [3, 5] };
  test.each<[string, TestNode[], string]>([
    [
      'Mul(x, s)',
      [
        { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
        { op: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
      ],
      'y',
    ],
    [
      'Mul(s, x)',
      [
        { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
        { op: 'Mul', inputs: ['s', 'x'], outputs: ['y'] },
      ],
      'y',
    ],
    // s also read elsewhere: no fusion, both paths still carry their gradient
    [
      's read twice',
      [
        { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
        { op: 'Mul', inputs: ['x', 's'], outputs: ['m'] },
        { op: 'Add', inputs: ['m', 's'], outputs: ['y'] },
      ],
      'y',
    ],
  ])('%s matches central differences', async (_, nodes, out) => {
    const r = await gradcheck({ inputs: [{ ...x, values: values(15, 3, -4, 4) }], nodes, out, wrt: ['x'], outDims: [3, 5], outDtype: D });
    expect(r.maxError.x).toBeLessThan(TOL);
  });

  test('the fused rule emits no gradient for the Sigmoid (four nodes, no Sum)', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dtype: F, dims: [2, 8] }],
      outputs: ['loss'],
      nodes: [
        { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
        { op: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
        { op: 'ReduceSum', inputs: ['y'], outputs: ['loss'], attrs: { keepdims: 0 } },
      ],
    });
    const g = deriveGradientGraph(model, { loss: 'loss', wrt: ['x'] }).model.graph;
    const grad = g.nodes.filter((n) => n.name.startsWith('grad/Mul:'));
    expect(grad.map((n) => n.opType).sort()).toEqual(['Add', 'Mul', 'Mul', 'Sub']);
    expect(g.nodes.some((n) => n.name.startsWith('grad/Sigmoid:'))).toBe(false);
  });
});
