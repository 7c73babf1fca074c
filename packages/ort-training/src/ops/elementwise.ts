/** Elementwise ops: arithmetic with broadcasting, activations, comparisons, casts. */
import { attrInt } from '../graph.js';
import { DataType, fromNumbers, isFloat, numel, toNumbers, type HostTensor } from '../tensor.js';
import { broadcastDims, input, strides } from './common.js';
import type { GradContext, InferContext, OpDef, OpTable, TensorType } from './types.js';

/** Broadcast-evaluate `f` over the inputs' values (constant folding of small tensors). */
export function broadcastEval(ctx: InferContext, dtype: number, f: (...xs: number[]) => number): HostTensor[] {
  const dims = broadcastDims(ctx.node, ctx.inputs.map((t) => t!.dims));
  const n = numel(dims);
  const vals = ctx.values.map((v) => toNumbers(v!));
  const ins = ctx.inputs.map((t) => {
    const d = t!.dims, s = strides(d), off = dims.length - d.length;
    return (flat: number[]) => { let idx = 0; for (let i = 0; i < d.length; i++) idx += (d[i] === 1 ? 0 : flat[i + off]!) * s[i]!; return idx; };
  });
  const out = new Array<number>(n);
  const outStrides = strides(dims);
  const flat = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    let r = k;
    for (let i = 0; i < dims.length; i++) { flat[i] = Math.floor(r / outStrides[i]!); r %= outStrides[i]!; }
    out[k] = f(...vals.map((v, j) => v[ins[j]!(flat)]!));
  }
  return [fromNumbers(dtype, dims, out)];
}

const broadcastInfer = (dtype?: number) => (ctx: InferContext): TensorType[] => [
  { dtype: dtype ?? input(ctx, 0).dtype, dims: broadcastDims(ctx.node, ctx.inputs.map((t, i) => (t ?? input(ctx, i)).dims)) },
];

const intDiv = (a: number, b: number) => Math.trunc(a / b);

function binary(f: (a: number, b: number, isF: boolean) => number, gradient?: OpDef['gradient']): OpDef {
  return {
    infer: broadcastInfer(),
    evaluate: (ctx) => { const isF = isFloat(ctx.inputs[0]!.dtype); return broadcastEval(ctx, ctx.inputs[0]!.dtype, (a, b) => f(a!, b!, isF)); },
    ...(gradient ? { gradient } : {}),
  };
}

function comparison(f: (a: number, b: number) => boolean): OpDef {
  return {
    infer: broadcastInfer(DataType.BOOL),
    evaluate: (ctx) => broadcastEval(ctx, DataType.BOOL, (a, b) => (f(a!, b!) ? 1 : 0)),
    nonDifferentiable: true,
  };
}

export function unaryFloat(f: ((x: number) => number) | undefined, gradient?: OpDef['gradient']): OpDef {
  return {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    ...(f ? { evaluate: (ctx: InferContext) => [fromNumbers(ctx.inputs[0]!.dtype, ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!).map(f))] } : {}),
    ...(gradient ? { gradient } : {}),
  };
}

/** d(a op b): reduce the broadcast gradient back onto each input's shape. */
const reduceTo = (ctx: GradContext, i: number, g: string) => ctx.b.sumToShape(g, ctx.inputs[i]!.type.dims);

export const elementwiseOps: OpTable = {
  Add: binary((a, b) => a + b, (ctx) => {
    const d = ctx.dOutputs[0]!;
    return [ctx.needs[0] ? reduceTo(ctx, 0, d) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, d) : undefined];
  }),
  Sub: binary((a, b) => a - b, (ctx) => {
    const d = ctx.dOutputs[0]!;
    return [ctx.needs[0] ? reduceTo(ctx, 0, d) : undefined, ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.neg(d)) : undefined];
  }),
  Mul: binary((a, b) => a * b, (ctx) => {
    const d = ctx.dOutputs[0]!, [a, b] = ctx.inputs;
    return [
      ctx.needs[0] ? reduceTo(ctx, 0, ctx.b.mul(d, b!.name)) : undefined,
      ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.mul(d, a!.name)) : undefined,
    ];
  }),
  Div: binary((a, b, isF) => (isF ? a / b : intDiv(a, b)), (ctx) => {
    const d = ctx.dOutputs[0]!, [, b] = ctx.inputs, y = ctx.outputs[0]!.name;
    const da = ctx.needs[0] || ctx.needs[1] ? ctx.b.div(d, b!.name) : undefined; // dL/da = d / b
    return [
      ctx.needs[0] ? reduceTo(ctx, 0, da!) : undefined,
      ctx.needs[1] ? reduceTo(ctx, 1, ctx.b.neg(ctx.b.mul(da!, y))) : undefined, // dL/db = -d * a / b^2 = -(d/b) * y
    ];
  }),
  Neg: unaryFloat((x) => -x, (ctx) => [ctx.b.neg(ctx.dOutputs[0]!)]),
  Identity: { infer: (ctx) => [{ ...input(ctx, 0) }], evaluate: (ctx) => [ctx.values[0]!], gradient: (ctx) => [ctx.dOutputs[0]] },
  Sum: {
    infer: broadcastInfer(),
    evaluate: (ctx) => broadcastEval(ctx, ctx.inputs[0]!.dtype, (...xs) => xs.reduce((a, b) => a + b, 0)),
    gradient: (ctx) => ctx.inputs.map((_, i) => (ctx.needs[i] ? reduceTo(ctx, i, ctx.dOutputs[0]!) : undefined)),
  },
  Cast: {
    infer: (ctx) => [{ dtype: attrInt(ctx.node, 'to', 1), dims: [...input(ctx, 0).dims] }],
    evaluate: (ctx) => [fromNumbers(attrInt(ctx.node, 'to', 1), ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!))],
    gradient: (ctx) => {
      const from = ctx.inputs[0]!.type.dtype;
      if (!isFloat(ctx.outputs[0]!.type.dtype)) return [undefined];
      return [ctx.b.cast(ctx.dOutputs[0]!, from)];
    },
  },
  Equal: comparison((a, b) => a === b),
  Less: comparison((a, b) => a < b),
  LessOrEqual: comparison((a, b) => a <= b),
  Greater: comparison((a, b) => a > b),
  GreaterOrEqual: comparison((a, b) => a >= b),
  Not: { infer: (ctx) => [{ ...input(ctx, 0) }], evaluate: (ctx) => [fromNumbers(DataType.BOOL, ctx.inputs[0]!.dims, toNumbers(ctx.values[0]!).map((x) => (x ? 0 : 1)))], nonDifferentiable: true },
  And: comparison((a, b) => !!a && !!b),
  Or: comparison((a, b) => !!a || !!b),
};
