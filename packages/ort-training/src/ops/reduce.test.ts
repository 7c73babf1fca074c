import { buildModel, gradcheck, randomValues, run, session, type TestNode } from '../testing/gradcheck.js';
import { inferTypes } from '../infer.js';
import { deriveGradientGraph } from '../autodiff.js';
import type { AttrValue } from '../graph.js';
import { DataType, fromNumbers, int64s, numel, toNumbers, type HostTensor } from '../tensor.js';

// DOUBLE throughout (onnxruntime's CPU reductions, softmax and CumSum all have double kernels): central
// differences with eps=1e-5 are accurate to ~1e-10, so 1e-7 relative catches any wrong rule with margin.
const TOL = 1e-7;
const D = DataType.DOUBLE;
const X = [2, 3, 4];

/** Inputs away from 0 by at least 0.1 (ReduceL1's kink) and, for `positive`, above it (ReduceLogSum, ReduceProd). */
const xValues = (seed: number, positive = false) =>
  randomValues(24, seed, positive ? 0.3 : -1.5, 1.5).map((v) => (Math.abs(v) < 0.1 ? v + (v < 0 ? -0.1 : 0.1) : v));

async function check(spec: {
  op: string;
  x: number[];
  xDims?: number[];
  axes?: number[];
  keepdims?: number;
  opset?: number;
  attrs?: Record<string, AttrValue>;
  extra?: Record<string, HostTensor>;
  extraInputs?: string[];
}) {
  const xDims = spec.xDims ?? X,
    opset = spec.opset ?? 18,
    keep = spec.keepdims ?? 1;
  const axesInput = spec.axes && opset >= (spec.op === 'ReduceSum' ? 13 : 18); // axes became an input at 13 for ReduceSum, 18 for the others
  const axes = (spec.axes ?? xDims.map((_, i) => i)).map((a) => (a < 0 ? a + xDims.length : a));
  const noop = !spec.axes && spec.attrs?.noop_with_empty_axes;
  const outDims =
    spec.op.startsWith('Reduce') && !noop ? (keep ? xDims.map((d, i) => (axes.includes(i) ? 1 : d)) : xDims.filter((_, i) => !axes.includes(i))) : xDims;
  const node: TestNode = {
    op: spec.op,
    outputs: ['y'],
    inputs: ['x', ...(axesInput ? ['axes'] : []), ...(spec.extraInputs ?? [])],
    attrs: { ...(spec.op.startsWith('Reduce') ? { keepdims: keep } : {}), ...(spec.axes && !axesInput ? { axes: spec.axes } : {}), ...spec.attrs },
  };
  const r = await gradcheck({
    inputs: [{ name: 'x', dtype: D, dims: xDims, values: spec.x }],
    opset,
    outDims,
    nodes: [node],
    out: 'y',
    wrt: ['x'],
    constants: { ...(axesInput ? { axes: int64s(spec.axes!) } : {}), ...spec.extra },
  });
  expect(r.maxError.x).toBeLessThan(TOL);
  return r;
}

describe('reduction gradients match central differences', () => {
  const ops: [string, boolean][] = [
    ['ReduceSum', false],
    ['ReduceMean', false],
    ['ReduceMax', false],
    ['ReduceMin', false],
    ['ReduceProd', true],
    ['ReduceL2', false],
    ['ReduceL1', false],
    ['ReduceSumSquare', false],
    ['ReduceLogSumExp', false],
    ['ReduceLogSum', true],
  ];
  describe.each(ops)('%s', (op, positive) => {
    test.each([
      [1, 18],
      [0, 18],
      [1, 17],
      [0, 17],
    ])('axes [0,2] of [2,3,4], keepdims=%d, opset %d', async (keepdims, opset) => {
      await check({ op, x: xValues(3, positive), axes: [0, 2], keepdims, opset });
    });
    test('all axes (none given), keepdims=0: a scalar', async () => {
      await check({ op, x: xValues(4, positive), keepdims: 0 });
    });
    test('axis -1', async () => {
      await check({ op, x: xValues(5, positive), axes: [-1], keepdims: 0 });
    });
  });

  test.each(['ReduceMax', 'ReduceL1', 'ReduceSumSquare', 'ReduceLogSumExp'])('%s with noop_with_empty_axes and no axes: elementwise only', async (op) => {
    await check({ op, x: xValues(6), attrs: { noop_with_empty_axes: 1 } });
  });
  test.each(['ReduceMax', 'ReduceMin'])('%s ties share the gradient equally (two-way ties, as the central difference sees them)', async (op) => {
    const x = xValues(7);
    const v = op === 'ReduceMax' ? 2 : -2;
    x[1] = v;
    x[9] = v; // a tie along axis 1 at [0, 0, 1] and [0, 2, 1]
    const r = await check({ op, x, axes: [1], keepdims: 0 });
    expect(r.analytic.x![1]).toBeCloseTo(r.analytic.x![9]!, 12);
    expect(r.analytic.x![1]).not.toBe(0);
  });
  test('ReduceL2 of an all-zero slice has a zero gradient, not NaN', async () => {
    const x = xValues(8);
    for (const k of [0, 1, 2, 3]) x[k] = 0; // the slice [0, 0, :]
    const r = await check({ op: 'ReduceL2', x, axes: [2], keepdims: 1 });
    expect(r.analytic.x!.slice(0, 4)).toEqual([0, 0, 0, 0]);
  });
});

describe('softmax and cumulative sum gradients match central differences', () => {
  test.each([
    ['Softmax', 1],
    ['Softmax', -1],
    ['Softmax', 0],
    ['LogSoftmax', 1],
    ['LogSoftmax', -1],
  ])('%s axis %d of [2,3,4]', async (op, axis) => {
    await check({ op, x: randomValues(24, 9, -3, 3), attrs: { axis: axis as number }, opset: 17 });
  });
  test('Softmax with the default axis (-1)', async () => {
    await check({ op: 'Softmax', x: randomValues(24, 10, -3, 3), opset: 13 });
  });
  // attention: O = softmax(S) @ V. With P read only by that product the rule takes sum(dP * P) from O's side.
  const attention = (extraReader: boolean, vDims = [2, 4, 3]) => ({
    inputs: [
      { name: 's', dtype: D, dims: [2, 4, 4], values: randomValues(32, 21, -2, 2) },
      { name: 'v', dtype: D, dims: vDims, values: randomValues(numel(vDims), 22) },
    ],
    nodes: [
      { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
      // a second reader of P (as DynASyn's attention losses are): the general rule must be used
      ...(extraReader
        ? [
            { op: 'Mul', inputs: ['p', 'p'], outputs: ['pp'] },
            { op: 'MatMul', inputs: ['pp', 'v'], outputs: ['o2'] },
            { op: 'Add', inputs: ['o', 'o2'], outputs: ['out'] },
          ]
        : []),
    ],
    out: extraReader ? 'out' : 'o',
    wrt: ['s', 'v'],
    opset: 17,
    outDims: [2, 4, vDims[vDims.length - 1]!],
  });
  test.each([
    ['P read only by P @ V', false, [2, 4, 3]],
    ['P also read elsewhere', true, [2, 4, 3]],
    ['V broadcast over the batch', false, [4, 3]],
  ] as const)('Softmax feeding attention (%s)', async (_, extraReader, vDims) => {
    const r = await gradcheck(attention(extraReader, [...vDims]));
    for (const w of ['s', 'v']) expect(r.maxError[w]).toBeLessThan(TOL);
  });
  test('Softmax feeding attention: the row sums come from [.., T, d], not from [.., T, T]', () => {
    const spec = attention(false);
    const model = buildModel({
      inputs: spec.inputs,
      nodes: [...spec.nodes, { op: 'ReduceSum', inputs: ['o'], outputs: ['loss'], attrs: { keepdims: 0 } }],
      outputs: ['loss'],
      opset: 17,
    });
    const derived = deriveGradientGraph(model, { loss: 'loss', wrt: ['s'] });
    const { types } = inferTypes(derived.model.graph, { opset: 17 });
    const sums = derived.model.graph.nodes.filter((n) => n.opType === 'ReduceSum' && n.name.startsWith('grad/Softmax'));
    expect(sums.map((n) => types.get(n.inputs[0]!)!.dims)).toEqual([[2, 4, 3]]);
  });
  test('recomputed attention probabilities (recomputeAbove): the same gradients, and the forward P has no backward reader', async () => {
    // O = softmax(Q K^T / 2) @ V with a second reader of the scores' softmax (as DynASyn's losses read P)
    const [B, T, d] = [2, 5, 3];
    const model = buildModel({
      inputs: [
        { name: 'q', dtype: D, dims: [B, T, d], values: randomValues(B * T * d, 31) },
        { name: 'k', dtype: D, dims: [B, T, d], values: randomValues(B * T * d, 32) },
        { name: 'v', dtype: D, dims: [B, T, d], values: randomValues(B * T * d, 33) },
      ],
      constants: { half: fromNumbers(D, [], [0.5]) },
      nodes: [
        { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 2, 1] } },
        { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
        { op: 'Mul', inputs: ['qk', 'half'], outputs: ['s'] },
        { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
        { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
        { op: 'ReduceMax', inputs: ['p'], outputs: ['pmax'], attrs: { axes: [2], keepdims: 1 } },
        { op: 'Mul', inputs: ['o', 'o'], outputs: ['oo'] },
        { op: 'ReduceSum', inputs: ['oo'], outputs: ['l1'], attrs: { keepdims: 0 } },
        { op: 'ReduceSum', inputs: ['pmax'], outputs: ['l2'], attrs: { keepdims: 0 } },
        { op: 'Add', inputs: ['l1', 'l2'], outputs: ['loss'] },
      ],
      outputs: ['loss'],
      opset: 17,
    });
    const feeds = Object.fromEntries(model.graph.inputs.map((v, i) => [v.name, fromNumbers(D, [B, T, d], randomValues(B * T * d, 31 + i))]));
    const kept = deriveGradientGraph(model, { loss: 'loss', wrt: ['q', 'k', 'v'] });
    const recomputed = deriveGradientGraph(model, { loss: 'loss', wrt: ['q', 'k', 'v'], recomputeAbove: 0 });
    const g = recomputed.model.graph;
    const backwardReaders = g.nodes.filter((n) => n.inputs.includes('p') && n.name.startsWith('grad/'));
    expect(backwardReaders).toEqual([]);
    expect(g.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(2);
    const [a, b] = [await run(await session(kept.model), feeds), await run(await session(recomputed.model), feeds)];
    for (const t of ['q', 'k', 'v']) {
      const [x, y] = [a[kept.gradientOutputs[t]!]!, b[recomputed.gradientOutputs[t]!]!];
      expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]!)))).toBeLessThan(1e-12);
    }
  });
  test.each([
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ])('CumSum along axis 1, exclusive=%d reverse=%d', async (exclusive, reverse) => {
    await check({
      op: 'CumSum',
      x: randomValues(24, 11),
      attrs: { exclusive, reverse },
      extra: { axis: fromNumbers(DataType.INT64, [], [1]) },
      extraInputs: ['axis'],
    });
  });
  test('CumSum along axis -1 given as int32', async () => {
    await check({ op: 'CumSum', x: randomValues(24, 12), extra: { axis: fromNumbers(DataType.INT32, [], [-1]) }, extraInputs: ['axis'] });
  });
});

describe('constant folding agrees with onnxruntime', () => {
  const x = fromNumbers(DataType.FLOAT, X, randomValues(24, 13, -2, 2));
  const ties = fromNumbers(DataType.FLOAT, [2, 4], [1, 3, 3, 0, -1, -1, -2, -1]);
  test.each<[string, string, Record<string, AttrValue>, Record<string, HostTensor>, number]>([
    ['ReduceMax axes [0,2] keepdims=0', 'ReduceMax', { keepdims: 0 }, { x, axes: int64s([0, 2]) }, 18],
    ['ReduceL2 axes [1]', 'ReduceL2', { axes: [1] }, { x }, 17],
    ['ReduceLogSumExp all axes', 'ReduceLogSumExp', { keepdims: 0 }, { x }, 18],
    ['ReduceProd axes [-1]', 'ReduceProd', {}, { x, axes: int64s([-1]) }, 18],
    ['ReduceSumSquare noop_with_empty_axes', 'ReduceSumSquare', { noop_with_empty_axes: 1 }, { x }, 18],
    ['ReduceL1 noop_with_empty_axes', 'ReduceL1', { noop_with_empty_axes: 1 }, { x }, 18],
    ['Softmax axis 1 (opset 13: one axis)', 'Softmax', { axis: 1 }, { x }, 13],
    ['Softmax axis 1 (opset 11: axes 1.. flattened)', 'Softmax', { axis: 1 }, { x }, 11],
    ['Softmax default axis (opset 11: 1)', 'Softmax', {}, { x }, 11],
    ['LogSoftmax axis 0', 'LogSoftmax', { axis: 0 }, { x }, 17],
    ['ArgMax axis 1 keepdims=1', 'ArgMax', { axis: 1 }, { x: ties }, 17],
    ['ArgMax axis 1 keepdims=0 last index', 'ArgMax', { axis: 1, keepdims: 0, select_last_index: 1 }, { x: ties }, 17],
    ['ArgMin axis -1 keepdims=0', 'ArgMin', { axis: -1, keepdims: 0 }, { x: ties }, 17],
    ['ArgMin axis 0 last index', 'ArgMin', { select_last_index: 1 }, { x: ties }, 17],
    ['CumSum axis 2 exclusive reverse', 'CumSum', { exclusive: 1, reverse: 1 }, { x, axis: fromNumbers(DataType.INT64, [], [2]) }, 17],
    ['CumSum axis 0', 'CumSum', {}, { x, axis: fromNumbers(DataType.INT64, [], [0]) }, 17],
  ])('%s', async (...[, op, attrs, constants, opset]) => {
    // rest parameters: jest reads a longer parameter list as `done`
    const model = buildModel({ inputs: [], nodes: [{ op, inputs: Object.keys(constants), outputs: ['y'], attrs }], constants, outputs: ['y'], opset });
    const folded = inferTypes(model.graph, { opset }).values.get('y');
    expect(folded).toBeDefined();
    const expected = (await run(await session(model), {})).y!;
    const ours = toNumbers(folded!);
    expect(ours.length).toBe(expected.length);
    expect(numel(folded!.dims)).toBe(expected.length);
    ours.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });
});
