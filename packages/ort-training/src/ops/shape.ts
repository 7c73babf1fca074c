/** Shape and data-movement ops, and the constant-producing ops of torch.onnx shape arithmetic. */
import { attrInt, attrInts, attrTensor } from '../graph.js';
import { tensorProtoToHost } from '../model.js';
import { DataType, fromNumbers, numel, toNumbers, type HostTensor } from '../tensor.js';
import { constInput, fail, input, normAxis, strides } from './common.js';
import type { InferContext, OpTable } from './types.js';

/** Gather elements of `x` (row-major) at the output index computed by `map` (for folding movement ops). */
export function gatherEval(x: HostTensor, outDims: number[], map: (outIndex: number[]) => number): HostTensor {
  const vals = toNumbers(x), n = numel(outDims), s = strides(outDims);
  const out = new Array<number>(n), idx = new Array<number>(outDims.length);
  for (let k = 0; k < n; k++) {
    let r = k;
    for (let i = 0; i < outDims.length; i++) { idx[i] = Math.floor(r / s[i]!); r %= s[i]!; }
    out[k] = vals[map(idx)]!;
  }
  return fromNumbers(x.dtype, outDims, out);
}

export function reshapeDims(ctx: InferContext, inDims: number[], spec: number[]): number[] {
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const out = spec.map((d, i) => (d === 0 && !allowZero ? (inDims[i] ?? fail(ctx.node, `0 at axis ${i} copies a dimension the input lacks`)) : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = out.reduce((a, d, i) => (i === minus ? a : a * d), 1);
    if (known === 0 || numel(inDims) % known !== 0) fail(ctx.node, `cannot reshape [${inDims}] to [${spec}]`);
    out[minus] = numel(inDims) / known;
  }
  if (numel(out) !== numel(inDims)) fail(ctx.node, `cannot reshape [${inDims}] (${numel(inDims)} elements) to [${out}]`);
  return out;
}

function unsqueezeAxes(ctx: InferContext): number[] {
  return ctx.opset >= 13 ? constInput(ctx, 1, 'axes') : attrInts(ctx.node, 'axes') ?? [];
}

function squeezeAxes(ctx: InferContext): number[] | undefined {
  if (ctx.opset >= 13) return ctx.node.inputs[1] ? constInput(ctx, 1, 'axes') : undefined;
  return attrInts(ctx.node, 'axes');
}

const same = (ctx: InferContext, dims: number[]): HostTensor => ({ ...ctx.values[0]!, dims });

export const shapeOps: OpTable = {
  Constant: {
    infer: (ctx) => {
      const t = attrTensor(ctx.node, 'value');
      if (t) return [{ dtype: t.data_type ?? 0, dims: (t.dims ?? []).map(Number) }];
      const a = ctx.node.attributes[0];
      if (a?.name === 'value_int') return [{ dtype: DataType.INT64, dims: [] }];
      if (a?.name === 'value_ints') return [{ dtype: DataType.INT64, dims: [a.ints?.length ?? 0] }];
      if (a?.name === 'value_float') return [{ dtype: DataType.FLOAT, dims: [] }];
      if (a?.name === 'value_floats') return [{ dtype: DataType.FLOAT, dims: [a.floats?.length ?? 0] }];
      return fail(ctx.node, `unsupported Constant attribute ${a?.name}`);
    },
    evaluate: (ctx) => {
      const t = attrTensor(ctx.node, 'value');
      if (t) return [tensorProtoToHost(t, ctx.node.outputs[0])];
      const a = ctx.node.attributes[0]!;
      if (a.name === 'value_int') return [fromNumbers(DataType.INT64, [], [Number(a.i)])];
      if (a.name === 'value_ints') return [fromNumbers(DataType.INT64, [a.ints!.length], a.ints!.map(Number))];
      if (a.name === 'value_float') return [fromNumbers(DataType.FLOAT, [], [a.f!])];
      return [fromNumbers(DataType.FLOAT, [a.floats!.length], a.floats!)];
    },
    nonDifferentiable: true,
  },
  Shape: {
    infer: (ctx) => {
      const r = input(ctx, 0).dims.length;
      const [s, e] = shapeRange(ctx, r);
      return [{ dtype: DataType.INT64, dims: [Math.max(0, e - s)] }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims, [s, e] = shapeRange(ctx, d.length);
      return [fromNumbers(DataType.INT64, [Math.max(0, e - s)], d.slice(s, e))];
    },
    nonDifferentiable: true,
  },
  Size: {
    infer: () => [{ dtype: DataType.INT64, dims: [] }],
    evaluate: (ctx) => [fromNumbers(DataType.INT64, [], [numel(ctx.inputs[0]!.dims)])],
    nonDifferentiable: true,
  },
  ConstantOfShape: {
    infer: (ctx) => {
      const t = attrTensor(ctx.node, 'value');
      return [{ dtype: t?.data_type ?? DataType.FLOAT, dims: constInput(ctx, 0, 'shape') }];
    },
    evaluate: (ctx) => {
      const t = attrTensor(ctx.node, 'value');
      const v = t ? toNumbers(tensorProtoToHost(t))[0]! : 0;
      const dims = toNumbers(ctx.values[0]!);
      return [fromNumbers(t?.data_type ?? DataType.FLOAT, dims, new Array(numel(dims)).fill(v))];
    },
    nonDifferentiable: true,
  },
  Reshape: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: reshapeDims(ctx, input(ctx, 0).dims, constInput(ctx, 1, 'shape')) }],
    evaluate: (ctx) => [same(ctx, reshapeDims(ctx, ctx.inputs[0]!.dims, toNumbers(ctx.values[1]!)))],
    gradient: (ctx) => [ctx.b.reshape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Unsqueeze: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims, axes = unsqueezeAxes(ctx), r = d.length + axes.length;
      const norm = axes.map((a) => normAxis(ctx.node, a, r));
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : d[j++]!);
      return [{ dtype: input(ctx, 0).dtype, dims: out }];
    },
    evaluate: (ctx) => [same(ctx, shapeOps.Unsqueeze!.infer(ctx)[0]!.dims)],
    gradient: (ctx) => [ctx.b.reshape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Squeeze: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims, axes = squeezeAxes(ctx)?.map((a) => normAxis(ctx.node, a, d.length));
      for (const a of axes ?? []) if (d[a] !== 1) fail(ctx.node, `cannot squeeze axis ${a} of size ${d[a]}`);
      return [{ dtype: input(ctx, 0).dtype, dims: d.filter((x, i) => (axes ? !axes.includes(i) : x !== 1)) }];
    },
    evaluate: (ctx) => [same(ctx, shapeOps.Squeeze!.infer(ctx)[0]!.dims)],
    gradient: (ctx) => [ctx.b.reshape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Expand: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims, s = constInput(ctx, 1, 'shape');
      const r = Math.max(d.length, s.length), out: number[] = [];
      for (let i = 0; i < r; i++) {
        const a = d[i - r + d.length] ?? 1, b = s[i - r + s.length] ?? 1;
        if (a !== b && a !== 1 && b !== 1) fail(ctx.node, `cannot expand [${d}] to [${s}]`);
        out.push(a === 1 ? b : a);
      }
      return [{ dtype: input(ctx, 0).dtype, dims: out }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims, out = shapeOps.Expand!.infer(ctx)[0]!.dims, s = strides(d), off = out.length - d.length;
      return [gatherEval(ctx.values[0]!, out, (idx) => d.reduce((a, di, i) => a + (di === 1 ? 0 : idx[i + off]!) * s[i]!, 0))];
    },
    gradient: (ctx) => [ctx.b.sumToShape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Transpose: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims, perm = attrInts(ctx.node, 'perm') ?? d.map((_, i) => d.length - 1 - i);
      return [{ dtype: input(ctx, 0).dtype, dims: perm.map((p) => d[p]!) }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims, perm = attrInts(ctx.node, 'perm') ?? d.map((_, i) => d.length - 1 - i), s = strides(d);
      return [gatherEval(ctx.values[0]!, perm.map((p) => d[p]!), (idx) => idx.reduce((a, v, i) => a + v * s[perm[i]!]!, 0))];
    },
    gradient: (ctx) => {
      const r = ctx.inputs[0]!.type.dims.length;
      const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const inv = new Array<number>(r);
      perm.forEach((p, i) => { inv[p] = i; });
      return [ctx.b.transpose(ctx.dOutputs[0]!, inv)];
    },
  },
  Concat: {
    infer: (ctx) => {
      const ts = ctx.inputs.map((t, i) => t ?? input(ctx, i));
      const axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), ts[0]!.dims.length);
      const dims = [...ts[0]!.dims];
      dims[axis] = ts.reduce((a, t) => a + t.dims[axis]!, 0);
      return [{ dtype: ts[0]!.dtype, dims }];
    },
    evaluate: (ctx) => {
      const out = shapeOps.Concat!.infer(ctx)[0]!;
      const axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), out.dims.length);
      const outer = numel(out.dims.slice(0, axis)), vals: number[] = [];
      const parts = ctx.values.map((v) => toNumbers(v!));
      for (let o = 0; o < outer; o++) parts.forEach((p, j) => {
        const block = numel(ctx.inputs[j]!.dims.slice(axis));
        for (let k = 0; k < block; k++) vals.push(p[o * block + k]!);
      });
      return [fromNumbers(out.dtype, out.dims, vals)];
    },
  },
  Gather: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims, idx = input(ctx, 1).dims;
      const axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), d.length);
      return [{ dtype: input(ctx, 0).dtype, dims: [...d.slice(0, axis), ...idx, ...d.slice(axis + 1)] }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims, axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), d.length);
      const ind = toNumbers(ctx.values[1]!).map((i) => (i < 0 ? i + d[axis]! : i));
      const out = shapeOps.Gather!.infer(ctx)[0]!.dims, s = strides(d), ir = ctx.inputs[1]!.dims.length, is = strides(ctx.inputs[1]!.dims);
      return [gatherEval(ctx.values[0]!, out, (o) => {
        let k = 0;
        for (let i = 0; i < axis; i++) k += o[i]! * s[i]!;
        let flat = 0;
        for (let i = 0; i < ir; i++) flat += o[axis + i]! * is[i]!;
        k += ind[flat]! * s[axis]!;
        for (let i = axis + 1; i < d.length; i++) k += o[i - 1 + ir]! * s[i]!;
        return k;
      })];
    },
  },
  Slice: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: sliceSpec(ctx).map((s) => s.count) }],
    evaluate: (ctx) => {
      const spec = sliceSpec(ctx), st = strides(ctx.inputs[0]!.dims);
      return [gatherEval(ctx.values[0]!, spec.map((s) => s.count), (idx) => idx.reduce((a, v, i) => a + (spec[i]!.start + v * spec[i]!.step) * st[i]!, 0))];
    },
  },
};

function shapeRange(ctx: InferContext, r: number): [number, number] {
  const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
  return [clamp(attrInt(ctx.node, 'start', 0)), clamp(attrInt(ctx.node, 'end', r))];
}

export interface SliceAxis { start: number; step: number; count: number }

/** Per-axis normalized (start, step, count) of a Slice, with ONNX clamping semantics. */
export function sliceSpec(ctx: InferContext): SliceAxis[] {
  const d = input(ctx, 0).dims;
  const starts = ctx.opset >= 10 ? constInput(ctx, 1, 'starts') : attrInts(ctx.node, 'starts')!;
  const ends = ctx.opset >= 10 ? constInput(ctx, 2, 'ends') : attrInts(ctx.node, 'ends')!;
  const axes = (ctx.opset >= 10 ? (ctx.node.inputs[3] ? constInput(ctx, 3, 'axes') : undefined) : attrInts(ctx.node, 'axes')) ?? starts.map((_, i) => i);
  const steps = ctx.opset >= 10 && ctx.node.inputs[4] ? constInput(ctx, 4, 'steps') : starts.map(() => 1);
  const spec: SliceAxis[] = d.map((n) => ({ start: 0, step: 1, count: n }));
  axes.forEach((a0, i) => {
    const a = normAxis(ctx.node, a0, d.length), n = d[a]!, step = steps[i]!;
    if (step === 0) fail(ctx.node, 'slice step 0');
    let s = starts[i]!, e = ends[i]!;
    if (s < 0) s += n;
    if (e < 0) e += n;
    if (step > 0) { s = Math.min(Math.max(s, 0), n); e = Math.min(Math.max(e, 0), n); }
    else { s = Math.min(Math.max(s, -1), n - 1); e = Math.min(Math.max(e, -1), n - 1); }
    const count = step > 0 ? Math.max(0, Math.ceil((e - s) / step)) : Math.max(0, Math.ceil((s - e) / -step));
    spec[a] = { start: s, step, count };
  });
  return spec;
}
