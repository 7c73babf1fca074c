import { buildModel, gradcheck, session, run, type TestInput, type TestNode } from '../testing/gradcheck.js';
import { deriveGradientGraph } from '../autodiff.js';
import { inferTypes } from '../infer.js';
import type { AttrValue } from '../graph.js';
import { DataType, fromNumbers, int64s, toNumbers, type HostTensor } from '../tensor.js';

// Every op here is linear in its differentiable inputs, so a central difference has no truncation error:
// with DOUBLE, rounding (~1e-16 |loss| / eps, eps = 1e-5) is below 1e-9, and 1e-7 still catches any element
// that is misplaced, dropped or counted twice (those are O(1) errors).
const TOL = 1e-7;
const D = DataType.DOUBLE,
  F = DataType.FLOAT,
  I64 = DataType.INT64;

interface Case {
  inputs: TestInput[];
  nodes: TestNode[];
  wrt: string[];
  constants?: Record<string, HostTensor>;
  opset?: number;
  out?: string;
}

/** Gradcheck a small graph, taking the output dims from the package's own shape inference. */
async function check(c: Case, tol = TOL, dtype: number = D, eps?: number): Promise<Record<string, number>> {
  const out = c.out ?? 'y';
  const model = buildModel({ inputs: c.inputs, nodes: c.nodes, outputs: [out], constants: c.constants, opset: c.opset });
  const { types } = inferTypes(model.graph, { opset: c.opset ?? 17 });
  const outDims = types.get(out)!.dims;
  const r = await gradcheck({ ...c, out, outDims, outDtype: dtype, ...(eps ? { eps } : {}) });
  for (const w of c.wrt) expect(r.maxError[w]).toBeLessThan(tol);
  // every element of a data-movement gradient is reached: the check must not pass on an all-zero gradient
  for (const w of c.wrt) expect(r.numeric[w]!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
  return r.maxError;
}

const one = (op: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, outputs = ['y']): TestNode[] => [{ op, inputs, outputs, attrs }];
const x = (dims: number[], name = 'x'): TestInput => ({ name, dtype: D, dims });

describe('Concat and Split gradients', () => {
  test.each([[0], [1], [-1]])('Concat axis %d', async (axis) => {
    const dims = (k: number) => (axis === 0 ? [k, 3] : [2, k]);
    await check({ inputs: [x(dims(2), 'a'), x(dims(1), 'b'), x(dims(3), 'c')], nodes: one('Concat', ['a', 'b', 'c'], { axis }), wrt: ['a', 'b', 'c'] });
  });

  test('Split with a split input, only one output used (the other gets zeros)', async () => {
    await check({ inputs: [x([2, 5])], constants: { s: int64s([2, 3]) }, nodes: one('Split', ['x', 's'], { axis: -1 }, ['y', 'unused']), wrt: ['x'] });
  });

  test('Split into equal parts, both outputs used in swapped order', async () => {
    await check({
      inputs: [x([4, 3])],
      nodes: [...one('Split', ['x'], { axis: 0 }, ['p', 'q']), ...one('Concat', ['q', 'p'], { axis: 1 })],
      wrt: ['x'],
    });
  });

  test('Split opset 18 num_outputs with an uneven last chunk', async () => {
    const model = buildModel({ inputs: [x([7])], nodes: one('Split', ['x'], { num_outputs: 3 }, ['a', 'b', 'c']), outputs: ['a', 'b', 'c'], opset: 18 });
    const { types } = inferTypes(model.graph, { opset: 18 });
    expect(['a', 'b', 'c'].map((n) => types.get(n)!.dims)).toEqual([[3], [3], [1]]);
    await check({ inputs: [x([7])], nodes: one('Split', ['x'], { num_outputs: 3 }, ['a', 'y', 'c']), wrt: ['x'], opset: 18 });
  });
});

describe('Slice gradient', () => {
  const slice = (dims: number[], starts: number[], ends: number[], axes: number[], steps?: number[]) =>
    check({
      inputs: [x(dims)],
      constants: { st: int64s(starts), en: int64s(ends), ax: int64s(axes), ...(steps ? { sp: int64s(steps) } : {}) },
      nodes: one('Slice', ['x', 'st', 'en', 'ax', ...(steps ? ['sp'] : [])]),
      wrt: ['x'],
    });
  test('step 1 on two axes, negative start', () => slice([4, 5], [1, -3], [3, 100], [0, 1]));
  test('step 2', () => slice([3, 7], [1], [7], [1], [2]));
  test('step 2 ending before the last element', () => slice([3, 8], [0], [5], [-1], [2]));
  test('step -1 reverses', () => slice([3, 5], [-1], [-100], [1], [-1]));
  test('step -2 from an inner start, with step 3 on another axis', () => slice([7, 9], [5, 1], [0, 9], [0, 1], [-2, 3]));
  test('step -1 over part of an axis, 3-D', () => slice([2, 6, 3], [4], [1], [1], [-1]));
});

describe('gradients of several slices of one tensor (joined by a Concat where they are disjoint blocks of one axis)', () => {
  const sl = (name: string, start: number, end: number, axis: number): TestNode => ({
    op: 'Slice',
    inputs: ['x', `st${start}`, `en${end}`, `ax${axis}`],
    outputs: [name],
  });
  const ints = (starts: number[], ends: number[], axes: number[]) =>
    Object.fromEntries([
      ...starts.map((v) => [`st${v}`, int64s([v])]),
      ...ends.map((v) => [`en${v}`, int64s([v])]),
      ...axes.map((v) => [`ax${v}`, int64s([v])]),
    ]) as Record<string, HostTensor>;
  const gradientOps = (c: Case) => {
    const model = buildModel({
      inputs: c.inputs,
      nodes: [...c.nodes, { op: 'ReduceSum', inputs: ['y'], outputs: ['l'], attrs: { keepdims: 0 } }],
      outputs: ['l'],
      constants: c.constants,
    });
    return deriveGradientGraph(model, { loss: 'l', wrt: ['x'] })
      .model.graph.nodes.filter((n) => n.name.startsWith('grad/'))
      .map((n) => n.opType);
  };

  // GEGLU's chunk(2, dim=-1): y = a * b of the two halves (quadratic: the central difference is exact)
  const halves: Case = {
    inputs: [x([2, 3, 8])],
    constants: ints([0, 4], [4, 8], [2]),
    nodes: [sl('a', 0, 4, 2), sl('b', 4, 8, 2), { op: 'Mul', inputs: ['a', 'b'], outputs: ['y'] }],
    wrt: ['x'],
  };
  test('two halves (GEGLU): one Concat, no Pad or Sum', async () => {
    await check(halves);
    const ops = gradientOps(halves);
    expect(ops).toContain('Concat');
    expect(ops).not.toContain('Sum');
    expect(ops).not.toContain('Pad');
  });

  test('blocks with a gap between and around them, in reverse order', async () => {
    const c: Case = {
      inputs: [x([3, 9])],
      constants: ints([5, 1], [8, 3], [1]),
      nodes: [
        sl('a', 5, 8, 1),
        sl('b', 1, 3, 1),
        { op: 'Concat', inputs: ['a', 'b'], outputs: ['c'], attrs: { axis: 1 } },
        { op: 'Mul', inputs: ['c', 'c'], outputs: ['y'] },
      ],
      wrt: ['x'],
    };
    await check(c);
    // the join's zeros around and between the blocks: one Concat and one outer Pad (two Pads and a Sum before)
    const ops = gradientOps(c);
    expect(ops.filter((o) => o === 'Pad')).toHaveLength(1);
    expect(ops).toContain('Concat');
  });

  test('overlapping blocks and a block of another axis: summed, still exact', async () => {
    const c: Case = {
      inputs: [x([4, 6])],
      constants: ints([0, 2, 1], [4, 6, 3], [0, 1]),
      nodes: [
        sl('a', 0, 4, 1),
        sl('b', 2, 6, 1),
        sl('d', 1, 3, 0),
        { op: 'Mul', inputs: ['a', 'b'], outputs: ['ab'] },
        { op: 'ReduceSum', inputs: ['d'], outputs: ['ds'], attrs: { keepdims: 0 } },
        { op: 'Mul', inputs: ['ab', 'ds'], outputs: ['y'] },
      ],
      wrt: ['x'],
    };
    await check(c);
  });
});

describe('Gather and GatherElements gradients', () => {
  const gather = (dims: number[], idxDims: number[], idx: number[], axis: number) =>
    check({
      inputs: [x(dims)],
      constants: { i: fromNumbers(I64, idxDims, idx) },
      nodes: one('Gather', ['x', 'i'], { axis }),
      wrt: ['x'],
    });
  test('embedding rows [V,D] by token ids [B,T] with repeats', () => gather([10, 4], [2, 7], [1, 3, 3, 9, 0, 1, 1, 5, 5, 5, 2, 8, 7, 3], 0));
  test('axis 1 with negative indices', () => gather([3, 5, 2], [4], [-1, 0, 2, -1], 1));
  test('last axis (-1) with 2-D indices', () => gather([2, 3, 4], [2, 2], [3, 0, -4, 1], -1));
  test('a scalar constant index (x[:, i])', () => gather([3, 4, 2], [], [-2], 1));

  test('indices computed at run time (int64 input, negatives)', async () => {
    await check({
      inputs: [x([6, 3]), { name: 'i', dtype: I64, dims: [2, 3], values: [0, -1, 5, 2, 2, -6] }],
      nodes: one('Gather', ['x', 'i'], { axis: 0 }),
      wrt: ['x'],
    });
  });

  test('GatherElements axis 1 with negative and repeated indices', async () => {
    await check({
      inputs: [x([3, 4])],
      constants: { i: fromNumbers(I64, [3, 2], [0, -1, 2, 2, 3, 0]) },
      nodes: one('GatherElements', ['x', 'i'], { axis: 1 }),
      wrt: ['x'],
    });
  });

  test('GatherND', async () => {
    await check({ inputs: [x([3, 4, 2])], constants: { i: fromNumbers(I64, [3, 2], [0, 1, 2, 3, 0, 1]) }, nodes: one('GatherND', ['x', 'i']), wrt: ['x'] });
  });
});

describe('Scatter gradients', () => {
  test.each(['none', 'add'])('ScatterND reduction %s w.r.t. data and updates', async (reduction) => {
    await check({
      inputs: [x([4, 3], 'd'), x([2, 3], 'u')],
      constants: { i: fromNumbers(I64, [2, 1], [2, 0]) },
      nodes: one('ScatterND', ['d', 'i', 'u'], { reduction }),
      wrt: ['d', 'u'],
    });
  });
  test.each(['none', 'add'])('ScatterElements reduction %s axis 1', async (reduction) => {
    await check({
      inputs: [x([3, 4], 'd'), x([3, 2], 'u')],
      constants: { i: fromNumbers(I64, [3, 2], [0, 3, 1, 2, 3, 0]) },
      nodes: one('ScatterElements', ['d', 'i', 'u'], { axis: 1, reduction }),
      wrt: ['d', 'u'],
    });
  });
});

describe('Flatten, Tile, Trilu, DepthToSpace, SpaceToDepth gradients', () => {
  test.each([[0], [2], [-1]])('Flatten axis %d', (axis) => check({ inputs: [x([2, 3, 4])], nodes: one('Flatten', ['x'], { axis }), wrt: ['x'] }));
  test.each([[[2, 1, 3]], [[1, 1, 1]], [[3, 2, 1]]])('Tile repeats %j', (reps) =>
    check({
      inputs: [x([2, 3, 2])],
      constants: { r: int64s(reps) },
      nodes: one('Tile', ['x', 'r']),
      wrt: ['x'],
    }),
  );
  test.each([
    [1, 0],
    [1, 1],
    [0, -1],
    [0, 2],
  ])('Trilu upper=%d k=%d', (upper, k) =>
    check({
      inputs: [x([2, 3, 4])],
      constants: { k: fromNumbers(I64, [], [k]) },
      nodes: one('Trilu', ['x', 'k'], { upper }),
      wrt: ['x'],
    }),
  );
  test('Trilu without k', () => check({ inputs: [x([4, 3])], nodes: one('Trilu', ['x'], { upper: 0 }), wrt: ['x'] }));
  test.each(['DCR', 'CRD'])('DepthToSpace %s', (mode) =>
    check({ inputs: [x([1, 8, 2, 3])], nodes: one('DepthToSpace', ['x'], { blocksize: 2, mode }), wrt: ['x'] }),
  );
  test('SpaceToDepth', () => check({ inputs: [x([2, 2, 4, 6])], nodes: one('SpaceToDepth', ['x'], { blocksize: 2 }), wrt: ['x'] }));
});

describe('Pad gradients', () => {
  const pad = (dims: number[], pads: number[], mode: string, extra: Partial<Case> = {}) =>
    check({
      inputs: [x(dims)],
      constants: { p: int64s(pads) },
      nodes: one('Pad', ['x', 'p'], { mode }),
      wrt: ['x'],
      ...extra,
    });
  test('constant', () => pad([2, 3], [1, 0, 2, 1], 'constant'));
  test('constant with negative pads (crops)', () => pad([3, 4], [-1, 2, 1, -2], 'constant'));
  test('reflect on two axes', () => pad([3, 4], [2, 1, 1, 3], 'reflect'));
  test('edge on two axes', () => pad([3, 4], [2, 0, 1, 3], 'edge'));
  test('gradient w.r.t. the constant value', () =>
    check({
      inputs: [x([2, 3]), x([], 'c')],
      constants: { p: int64s([1, 1, 0, 2]) },
      nodes: one('Pad', ['x', 'p', 'c']),
      wrt: ['x', 'c'],
    }));
  test('opset 18 axes input', () =>
    check({
      inputs: [x([2, 3, 4])],
      constants: { p: int64s([2, 1, 1, 0]), a: int64s([-1, 0]) },
      nodes: one('Pad', ['x', 'p', '', 'a'], { mode: 'reflect' }),
      wrt: ['x'],
      opset: 18,
    }));
});

// onnxruntime's CPU Resize has no double kernel, so Resize is checked in FLOAT. Resize is linear in X, so a
// large step (eps = 0.5) has no truncation error and float rounding of the loss (~1e-7 |loss| / eps, |loss|
// about 10 here) stays near 1e-6; 1e-4 leaves margin and still flags any wrong interpolation weight.
describe('Resize gradient (float)', () => {
  const resize = (dims: number[], attrs: Record<string, AttrValue>, by: { scales?: number[]; sizes?: number[] }) =>
    check(
      {
        inputs: [{ name: 'x', dtype: F, dims }],
        constants: by.scales ? { s: fromNumbers(F, [by.scales.length], by.scales) } : { z: int64s(by.sizes!) },
        nodes: one('Resize', by.scales ? ['x', '', 's'] : ['x', '', '', 'z'], attrs),
        wrt: ['x'],
      },
      1e-4,
      F,
      0.5,
    );
  const x2 = { scales: [1, 1, 2, 2] };
  test('nearest x2, torch style (asymmetric, floor)', () =>
    resize([1, 2, 3, 4], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, x2));
  test('nearest x2, defaults (half_pixel, round_prefer_floor)', () => resize([2, 1, 3, 3], { mode: 'nearest' }, x2));
  test('nearest to a non-integer size', () => resize([1, 1, 3, 4], { mode: 'nearest' }, { sizes: [1, 1, 5, 7] }));
  test('nearest downsampling, round_prefer_ceil', () =>
    resize([1, 1, 6, 5], { mode: 'nearest', nearest_mode: 'round_prefer_ceil' }, { scales: [1, 1, 0.5, 0.6] }));
  test('bilinear x2 half_pixel', () => resize([1, 2, 3, 4], { mode: 'linear' }, x2));
  test('bilinear x2 align_corners', () => resize([1, 2, 3, 4], { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, x2));
  test('bilinear x2 pytorch_half_pixel', () => resize([1, 1, 4, 3], { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, x2));
  test('bilinear asymmetric to a non-integer size', () =>
    resize([1, 2, 3, 4], { mode: 'linear', coordinate_transformation_mode: 'asymmetric' }, { sizes: [1, 2, 5, 7] }));
  test('bilinear half_pixel downsampling', () => resize([1, 1, 6, 7], { mode: 'linear' }, { sizes: [1, 1, 4, 3] }));
  test('bicubic x2', () => resize([1, 1, 4, 5], { mode: 'cubic' }, x2));
  test('bicubic, exclude_outside, align_corners, non-integer size', () =>
    resize([1, 1, 4, 5], { mode: 'cubic', exclude_outside: 1, coordinate_transformation_mode: 'align_corners' }, { sizes: [1, 1, 7, 6] }));

  test('integer nearest upsampling uses Reshape + ReduceSum, not MatMul', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dtype: F, dims: [1, 2, 3, 4] }],
      constants: { s: fromNumbers(F, [4], [1, 1, 2, 2]) },
      nodes: [
        ...one('Resize', ['x', '', 's'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }),
        { op: 'ReduceSum', inputs: ['y'], outputs: ['l'], attrs: { keepdims: 0 } },
      ],
      outputs: ['l'],
    });
    const ops = deriveGradientGraph(model, { loss: 'l', wrt: ['x'] }).model.graph.nodes.map((n) => n.opType);
    expect(ops).not.toContain('MatMul');
    expect(ops).toContain('ReduceSum');
  });
});

describe('static shapes and folding of torch.onnx shape arithmetic', () => {
  // x[B,C,H,W] -> reshape to [B, C, H*W] with the target computed from Shape, as torch.onnx emits it:
  // Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and Shape -> Slice -> Concat -> Reshape.
  const nodes: TestNode[] = [
    { op: 'Shape', inputs: ['x'], outputs: ['s'] },
    { op: 'Gather', inputs: ['s', 'i0'], outputs: ['b'], attrs: { axis: 0 } },
    { op: 'Gather', inputs: ['s', 'i1'], outputs: ['c'], attrs: { axis: 0 } },
    { op: 'Unsqueeze', inputs: ['b', 'ax0'], outputs: ['b1'] },
    { op: 'Unsqueeze', inputs: ['c', 'ax0'], outputs: ['c1'] },
    { op: 'Concat', inputs: ['b1', 'c1', 'minus1'], outputs: ['target'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['x', 'target'], outputs: ['flat'] },
    { op: 'Slice', inputs: ['s', 'st', 'en'], outputs: ['bc'] },
    { op: 'Concat', inputs: ['bc', 'hw'], outputs: ['target2'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['x', 'target2'], outputs: ['flat2'] },
    { op: 'Range', inputs: ['r0', 'c', 'r1'], outputs: ['ar'] },
    { op: 'ConstantOfShape', inputs: ['bc'], outputs: ['ones'], attrs: { value: { tensor: { dims: [1], data_type: I64, int64_data: [1] } } } },
    { op: 'Add', inputs: ['flat', 'flat2'], outputs: ['y'] },
  ];
  const constants = {
    i0: fromNumbers(I64, [], [0]),
    i1: fromNumbers(I64, [], [-3]),
    ax0: int64s([0]),
    minus1: int64s([-1]),
    st: int64s([0]),
    en: int64s([-2]),
    hw: int64s([12]),
    r0: fromNumbers(I64, [], [0]),
    r1: fromNumbers(I64, [], [2]),
  };

  test('inferTypes gives static shapes and folds the computed values', () => {
    const model = buildModel({ inputs: [x([2, 5, 3, 4])], nodes, outputs: ['y', 'ar', 'ones'], constants });
    const { types, values } = inferTypes(model.graph, { opset: 17 });
    const val = (n: string) => toNumbers(values.get(n)!);
    expect(val('s')).toEqual([2, 5, 3, 4]);
    expect(val('target')).toEqual([2, 5, -1]);
    expect(val('bc')).toEqual([2, 5]);
    expect(val('target2')).toEqual([2, 5, 12]);
    expect(types.get('flat')!.dims).toEqual([2, 5, 12]);
    expect(types.get('y')!.dims).toEqual([2, 5, 12]);
    expect(val('ar')).toEqual([0, 2, 4]);
    expect(types.get('ones')).toEqual({ dtype: I64, dims: [2, 5] });
    expect(val('ones')).toEqual(new Array(10).fill(1));
    expect(values.has('flat')).toBe(false);
  });

  test('gradients flow through the Shape-computed Reshape', async () => {
    await check({ inputs: [x([2, 5, 3, 4])], nodes, constants, wrt: ['x'] });
  });
});

describe('folding of movement ops agrees with onnxruntime', () => {
  test.each<[string, TestNode[], Record<string, HostTensor>]>([
    ['Tile', one('Tile', ['x', 'r']), { r: int64s([2, 3]) }],
    ['Pad reflect', one('Pad', ['x', 'p'], { mode: 'reflect' }), { p: int64s([1, 2, 1, 0]) }],
    ['Pad edge', one('Pad', ['x', 'p'], { mode: 'edge' }), { p: int64s([0, 2, 1, 1]) }],
    ['Pad constant', one('Pad', ['x', 'p', 'v']), { p: int64s([1, -1, 0, 2]), v: fromNumbers(D, [], [7]) }],
    ['Trilu', one('Trilu', ['x', 'k'], { upper: 0 }), { k: fromNumbers(I64, [], [1]) }],
    ['Slice -2', one('Slice', ['x', 'a', 'b', 'c', 'd']), { a: int64s([-1]), b: int64s([-100]), c: int64s([1]), d: int64s([-2]) }],
    ['GatherElements', one('GatherElements', ['x', 'i'], { axis: 1 }), { i: fromNumbers(I64, [2, 2], [2, -1, 0, 1]) }],
    ['Split', one('Split', ['x', 's'], { axis: 1 }, ['y', 'z']), { s: int64s([1, 2]) }],
    ['Flatten', one('Flatten', ['x'], { axis: 0 }), {}],
  ])('%s', async (_name, ops, constants) => {
    const xv = fromNumbers(D, [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const model = buildModel({ inputs: [], nodes: ops, outputs: ['y'], constants: { ...constants, x: xv } });
    const { values } = inferTypes(model.graph, { opset: 17 });
    const ort = await run(await session(model), {});
    expect(toNumbers(values.get('y')!)).toEqual(ort.y);
  });
});
