import { gradcheck, type TestInput } from '../testing/gradcheck.js';
import type { AttrValue } from '../graph.js';
import { DataType } from '../tensor.js';
import { convWeightGradientOptions } from './conv.js';

const D = DataType.DOUBLE,
  F = DataType.FLOAT;
// DOUBLE (MatMul, Gemm, Einsum): products are linear in each operand, so central differences have no
// truncation error; rounding ~1e-16 |loss| / eps(1e-5) ~ 1e-10. 1e-7 relative catches any wrong rule.
const TOL_D = 1e-7;
// FLOAT (onnxruntime CPU has no double Conv/ConvTranspose): still linear in each operand, rounding is
// ~6e-8 |loss| / eps(1e-2) ~ 1e-4 for losses of O(10); 2e-3 of max |grad| leaves margin, while a wrong
// rule (a missed tap, a shifted pad) is off by O(0.1) or more.
const TOL_F = 2e-3;

async function expectGrads(
  spec: {
    op: string;
    inputs: TestInput[];
    attrs?: Record<string, AttrValue | undefined>;
    outDims: number[];
    wrt?: string[];
    opset?: number;
  },
  tol: number,
) {
  const dtype = spec.inputs[0]!.dtype ?? F;
  const wrt = spec.wrt ?? spec.inputs.map((i) => i.name);
  const r = await gradcheck({
    inputs: spec.inputs,
    nodes: [{ op: spec.op, inputs: spec.inputs.map((i) => i.name), outputs: ['y'], attrs: spec.attrs }],
    out: 'y',
    wrt,
    outDims: spec.outDims,
    outDtype: dtype,
    opset: spec.opset,
    ...(dtype === F ? { eps: 1e-2 } : {}),
  });
  for (const w of wrt) expect([w, r.maxError[w]]).toEqual([w, expect.any(Number)]);
  for (const w of wrt) expect(r.maxError[w]).toBeLessThan(tol);
}

describe('MatMul gradients match central differences', () => {
  test.each([
    ['activations x weight', [2, 3, 4], [4, 5], [2, 3, 5]],
    ['matrix x matrix', [3, 4], [4, 2], [3, 2]],
    ['attention batches', [2, 2, 3, 4], [2, 2, 4, 3], [2, 2, 3, 3]],
    ['batch broadcast', [2, 1, 3, 4], [3, 4, 2], [2, 3, 3, 2]],
    ['matrix x batch', [3, 4], [2, 4, 2], [2, 3, 2]],
    ['vector x matrix', [4], [4, 3], [3]],
    ['batch x vector', [2, 3, 4], [4], [2, 3]],
    ['vector x batch', [4], [2, 4, 3], [2, 3]],
    ['vector x vector', [4], [4], []],
    // few rows, many columns: dB (and below dA) formed as a transposed product
    ['attention dK^T shape', [2, 9, 2], [2, 2, 9], [2, 9, 9]],
    ['broadcast batch, wide dA', [2, 2, 10], [1, 10, 3], [2, 2, 3]],
  ])('%s %j x %j', async (_, a, b, out) => {
    await expectGrads(
      {
        op: 'MatMul',
        inputs: [
          { name: 'a', dtype: D, dims: a },
          { name: 'b', dtype: D, dims: b },
        ],
        outDims: out,
      },
      TOL_D,
    );
  });
});

describe('Gemm gradients match central differences', () => {
  test.each([
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ])('transA=%i transB=%i with alpha, beta and broadcast C', async (tA, tB) => {
    const [M, K, N] = [3, 4, 2];
    await expectGrads(
      {
        op: 'Gemm',
        attrs: { transA: tA, transB: tB, alpha: { float: 0.7 }, beta: { float: -1.3 } },
        outDims: [M, N],
        inputs: [
          { name: 'a', dtype: D, dims: tA ? [K, M] : [M, K] },
          { name: 'b', dtype: D, dims: tB ? [N, K] : [K, N] },
          { name: 'c', dtype: D, dims: tA ? [M, 1] : [N] },
        ],
      },
      TOL_D,
    );
  });
  test('without C', async () => {
    await expectGrads(
      {
        op: 'Gemm',
        attrs: { transB: 1 },
        outDims: [2, 3],
        inputs: [
          { name: 'a', dtype: D, dims: [2, 4] },
          { name: 'b', dtype: D, dims: [3, 4] },
        ],
      },
      TOL_D,
    );
  });
});

describe('Einsum gradients match central differences', () => {
  test.each([
    [
      'bij,bjk->bik',
      [
        [2, 3, 4],
        [2, 4, 2],
      ],
      [2, 3, 2],
    ],
    ['i,j->ij', [[3], [4]], [3, 4]],
    [
      'bhqd,bhkd->bhqk',
      [
        [1, 2, 3, 2],
        [1, 2, 4, 2],
      ],
      [1, 2, 3, 4],
    ],
    ['ij->i', [[3, 4]], [3]],
    [
      'ij,jk',
      [
        [2, 3],
        [3, 2],
      ],
      [2, 2],
    ],
    ['ijk,k->ji', [[2, 3, 4], [4]], [3, 2]],
  ])('%s', async (equation, shapes, out) => {
    await expectGrads({ op: 'Einsum', attrs: { equation }, outDims: out, inputs: shapes.map((dims, i) => ({ name: `x${i}`, dtype: D, dims })) }, TOL_D);
  });
  test('ellipsis is refused clearly', async () => {
    await expect(
      expectGrads(
        {
          op: 'Einsum',
          attrs: { equation: '...ij,...jk->...ik' },
          outDims: [2, 2],
          inputs: [
            { name: 'a', dtype: D, dims: [2, 3] },
            { name: 'b', dtype: D, dims: [3, 2] },
          ],
        },
        TOL_D,
      ),
    ).rejects.toThrow(/ellipsis/);
  });
});

type ConvCase = [string, number[], number[], Record<string, AttrValue>, number[]];
const convCases: ConvCase[] = [
  ['1-D plain', [2, 3, 7], [4, 3, 3], {}, [2, 4, 5]],
  ['1-D stride 2 pads 1,2 dilation 2', [1, 2, 9], [3, 2, 3], { strides: [2], pads: [1, 2], dilations: [2] }, [1, 3, 4]],
  ['1-D groups 2 SAME_UPPER stride 2', [2, 4, 8], [6, 2, 3], { group: 2, strides: [2], auto_pad: 'SAME_UPPER' }, [2, 6, 4]],
  ['2-D 3x3 pad 1', [2, 2, 5, 5], [3, 2, 3, 3], { pads: [1, 1, 1, 1] }, [2, 3, 5, 5]],
  ['2-D stride 2 dropping a row', [1, 2, 6, 5], [2, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, [1, 2, 3, 3]],
  ['2-D dilation 2 asymmetric pads', [1, 2, 6, 6], [2, 2, 2, 3], { dilations: [2, 2], pads: [0, 1, 2, 0] }, [1, 2, 6, 3]],
  ['2-D groups 2 3x3 pad 1', [2, 4, 5, 5], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [2, 6, 5, 5]],
  ['2-D depthwise SAME_LOWER', [1, 3, 5, 4], [3, 1, 2, 2], { group: 3, auto_pad: 'SAME_LOWER' }, [1, 3, 5, 4]],
  ['2-D 1x1', [2, 4, 3, 3], [2, 4, 1, 1], {}, [2, 2, 3, 3]],
  ['2-D 1x1 stride 2 VALID', [1, 3, 5, 5], [2, 3, 1, 1], { strides: [2, 2], auto_pad: 'VALID' }, [1, 2, 3, 3]],
  // fewer output than input channels ('auto' takes the output's patches for these)
  ['2-D 3x3 pad 1 channels 5 -> 2', [2, 5, 4, 5], [2, 5, 3, 3], { pads: [1, 1, 1, 1] }, [2, 2, 4, 5]],
  ['2-D 3x2 VALID dilation (2,1) channels 4 -> 3', [1, 4, 6, 5], [3, 4, 3, 2], { dilations: [2, 1] }, [1, 3, 2, 4]],
  ['2-D groups 2 asymmetric pads channels 6 -> 4', [2, 6, 5, 4], [4, 3, 3, 3], { group: 2, pads: [2, 0, 0, 1] }, [2, 4, 5, 3]],
  ['1-D SAME_UPPER kernel 4 channels 3 -> 1', [2, 3, 7], [1, 3, 4], { auto_pad: 'SAME_UPPER' }, [2, 1, 7]],
];

describe.each(['im2col', 'conv', 'patches', 'outputPatches', 'gemm', 'gemmInput', 'gemmSlices', 'auto'] as const)(
  'Conv gradients match central differences (weight gradient by %s)',
  (strategy) => {
    beforeAll(() => {
      convWeightGradientOptions.strategy = strategy;
    });
    afterAll(() => {
      convWeightGradientOptions.strategy = 'auto';
    });
    test.each(convCases)('%s', async (_, x, w, attrs, out) => {
      await expectGrads(
        {
          op: 'Conv',
          attrs,
          outDims: out,
          inputs: [
            { name: 'x', dims: x },
            { name: 'w', dims: w },
            { name: 'bias', dims: [w[0]!] },
          ],
        },
        TOL_F,
      );
    });
  },
);

describe('ConvTranspose gradients match central differences', () => {
  test.each([
    ['1-D stride 2', [1, 2, 4], [2, 3, 3], { strides: [2] }, [1, 3, 9]],
    ['2-D stride 2 pads output_padding', [1, 2, 3, 3], [2, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, [1, 2, 6, 6]],
    ['2-D groups dilation', [1, 4, 3, 3], [4, 1, 2, 2], { group: 2, dilations: [2, 2] }, [1, 2, 5, 5]],
    ['2-D output_shape', [1, 2, 3, 3], [2, 2, 3, 3], { strides: [2, 2], output_shape: [6, 6] }, [1, 2, 6, 6]],
  ] as ConvCase[])('%s', async (_, x, w, attrs, out) => {
    await expectGrads(
      {
        op: 'ConvTranspose',
        attrs,
        outDims: out,
        inputs: [
          { name: 'x', dims: x },
          { name: 'w', dims: w },
          { name: 'bias', dims: [w[1]! * ((attrs.group as number) ?? 1)] },
        ],
      },
      TOL_F,
    );
  });
});
