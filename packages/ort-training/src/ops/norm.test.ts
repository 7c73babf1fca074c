import { gradcheck, type TestInput } from '../testing/gradcheck.js';
import type { AttrValue } from '../graph.js';
import { DataType } from '../tensor.js';

const F = DataType.FLOAT,
  D = DataType.DOUBLE;
// FLOAT: onnxruntime CPU has no double InstanceNormalization, and LayerNormalization (which the rules use
// to recompute the statistics) keeps its statistics in float even for double inputs. Central differences
// with eps=3e-3 on O(1) inputs: truncation ~eps^2 |f'''| ~ 1e-4, rounding ~6e-8 |loss| / eps ~ 1e-4; 2e-3
// of max |grad| leaves margin, while a wrong rule (a missing mean term) is off by O(0.1).
const TOL_F = 2e-3;
// DOUBLE BatchNormalization (inference mode): affine in x, scale, B, mean and smooth in var, so with
// eps=1e-5 truncation and rounding are both ~1e-10.
const TOL_D = 1e-7;

async function expectGrads(
  spec: {
    op: string;
    inputs: TestInput[];
    attrs?: Record<string, AttrValue | undefined>;
    outDims: number[];
    opset?: number;
    outputs?: string[];
    out?: string;
  },
  tol: number,
) {
  const dtype = spec.inputs[0]!.dtype ?? F;
  const wrt = spec.inputs.map((i) => i.name);
  const r = await gradcheck({
    inputs: spec.inputs,
    nodes: [{ op: spec.op, inputs: wrt, outputs: spec.outputs ?? ['y'], attrs: spec.attrs }],
    out: spec.out ?? 'y',
    wrt,
    outDims: spec.outDims,
    outDtype: dtype,
    opset: spec.opset,
    ...(dtype === F ? { eps: 3e-3 } : {}),
  });
  for (const w of wrt) expect(r.maxError[w]).toBeLessThan(tol);
}

describe('LayerNormalization gradients match central differences', () => {
  test.each([
    ['last axis', [2, 3, 4], -1, [4], [4]],
    ['two axes', [2, 3, 4], 1, [3, 4], [3, 4]],
    ['without bias', [3, 5], -1, [5], undefined],
  ] as [string, number[], number, number[], number[] | undefined][])('%s', async (_, x, axis, scale, bias) => {
    const inputs: TestInput[] = [{ name: 'x', dims: x }, { name: 's', dims: scale }, ...(bias ? [{ name: 'b', dims: bias }] : [])];
    await expectGrads({ op: 'LayerNormalization', attrs: { axis, epsilon: { float: 1e-5 } }, inputs, outDims: x }, TOL_F);
  });
  test.each(['mean', 'invstd'])('through the optional %s output', async (which) => {
    await expectGrads(
      {
        op: 'LayerNormalization',
        attrs: { axis: -1 },
        inputs: [
          { name: 'x', dims: [3, 4] },
          { name: 's', dims: [4] },
        ],
        outputs: ['y', 'mean', 'invstd'],
        out: which,
        outDims: [3, 1],
      },
      TOL_F,
    );
  });
});

describe('InstanceNormalization gradients match central differences', () => {
  test.each([[[2, 3, 5]], [[1, 2, 3, 4]]])('%j', async (x) => {
    await expectGrads(
      {
        op: 'InstanceNormalization',
        attrs: { epsilon: { float: 1e-5 } },
        inputs: [
          { name: 'x', dims: x },
          { name: 's', dims: [x[1]!] },
          { name: 'b', dims: [x[1]!] },
        ],
        outDims: x,
      },
      TOL_F,
    );
  });
});

describe('GroupNormalization gradients match central differences', () => {
  test.each([
    ['opset 18: scale per group', 18, [2, 4, 3], 2, 2],
    ['opset 18: 2-D spatial', 18, [1, 6, 2, 2], 3, 3],
    ['opset 21: scale per channel', 21, [2, 4, 3], 2, 4],
  ] as [string, number, number[], number, number][])('%s', async (_, opset, x, groups, params) => {
    await expectGrads(
      {
        op: 'GroupNormalization',
        opset,
        attrs: { num_groups: groups, epsilon: { float: 1e-5 } },
        inputs: [
          { name: 'x', dims: x },
          { name: 's', dims: [params] },
          { name: 'b', dims: [params] },
        ],
        outDims: x,
      },
      TOL_F,
    );
  });
});

describe('BatchNormalization (inference mode) gradients match central differences', () => {
  test.each([[[2, 3, 4]], [[2, 3]], [[1, 2, 2, 3]]])('%j', async (x) => {
    const C = x[1]!;
    await expectGrads(
      {
        op: 'BatchNormalization',
        attrs: { epsilon: { float: 1e-3 } },
        outDims: x,
        inputs: [
          { name: 'x', dtype: D, dims: x },
          { name: 's', dtype: D, dims: [C] },
          { name: 'b', dtype: D, dims: [C] },
          { name: 'm', dtype: D, dims: [C] },
          { name: 'v', dtype: D, dims: [C], values: [0.5, 1.2, 0.8].slice(0, C) },
        ],
      },
      TOL_D,
    );
  });
});
