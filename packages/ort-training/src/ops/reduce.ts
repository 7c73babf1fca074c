/** Reductions and softmax. */
import { attrInt, attrInts } from '../graph.js';
import { fromNumbers, numel, toNumbers } from '../tensor.js';
import { input, normAxis, optionalConst, strides } from './common.js';
import type { GradContext, InferContext, OpDef, OpTable, TensorType } from './types.js';

/** Reduction axes: attribute before the op's "axes as input" opset, input after. */
export function reduceAxes(ctx: InferContext, inputSince: number): number[] | undefined {
  const rank = input(ctx, 0).dims.length;
  const raw = ctx.opset >= inputSince ? optionalConst(ctx, 1) : attrInts(ctx.node, 'axes');
  return raw?.map((a) => normAxis(ctx.node, a, rank));
}

/** All axes when none are given, unless noop_with_empty_axes. */
export function effectiveAxes(ctx: InferContext, inputSince: number): number[] {
  const rank = input(ctx, 0).dims.length;
  const axes = reduceAxes(ctx, inputSince);
  if (axes && axes.length) return [...new Set(axes)].sort((a, b) => a - b);
  if (attrInt(ctx.node, 'noop_with_empty_axes', 0)) return [];
  return Array.from({ length: rank }, (_, i) => i);
}

export function reducedType(ctx: InferContext, axes: number[]): TensorType {
  const t = input(ctx, 0);
  const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
  const dims = keep ? t.dims.map((d, i) => (axes.includes(i) ? 1 : d)) : t.dims.filter((_, i) => !axes.includes(i));
  return { dtype: t.dtype, dims };
}

/** Host reduction for folding. */
export function reduceEval(ctx: InferContext, axes: number[], init: number, f: (acc: number, x: number) => number, fin = (acc: number, _n: number) => acc) {
  const t = input(ctx, 0), x = toNumbers(ctx.values[0]!);
  const out = reducedType(ctx, axes);
  const keptDims = t.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = new Array<number>(numel(keptDims)).fill(init);
  const s = strides(t.dims), ks = strides(keptDims);
  for (let k = 0; k < x.length; k++) {
    let r = k, o = 0;
    for (let i = 0; i < t.dims.length; i++) { const c = Math.floor(r / s[i]!); r %= s[i]!; if (!axes.includes(i)) o += c * ks[i]!; }
    acc[o] = f(acc[o]!, x[k]!);
  }
  const count = axes.reduce((a, i) => a * t.dims[i]!, 1);
  return [fromNumbers(out.dtype, out.dims, acc.map((a) => fin(a, count)))];
}

function reduction(inputSince: number, init: number, f: (acc: number, x: number) => number, fin?: (acc: number, n: number) => number, gradient?: OpDef['gradient']): OpDef {
  return {
    infer: (ctx) => [reducedType(ctx, effectiveAxes(ctx, inputSince))],
    evaluate: (ctx) => reduceEval(ctx, effectiveAxes(ctx, inputSince), init, f, fin),
    ...(gradient ? { gradient } : {}),
  };
}

/** The output gradient broadcast back over the reduced axes (re-inserting them when keepdims=0). */
export function expandReduced(ctx: GradContext, inputSince: number): string {
  const x = ctx.inputs[0]!.type.dims;
  const axes = effectiveAxes({ ...ctx, inputs: ctx.inputs.map((t) => t?.type), values: ctx.inputs.map((t) => t?.value) }, inputSince);
  const keepShape = x.map((d, i) => (axes.includes(i) ? 1 : d));
  return ctx.b.expand(ctx.b.reshape(ctx.dOutputs[0]!, keepShape), x);
}

export const reduceOps: OpTable = {
  ReduceSum: reduction(13, 0, (a, x) => a + x, undefined, (ctx) => [expandReduced(ctx, 13), undefined]),
  ReduceMean: reduction(18, 0, (a, x) => a + x, (a, n) => a / n, (ctx) => {
    const x = ctx.inputs[0]!.type.dims, y = ctx.outputs[0]!.type.dims;
    return [ctx.b.scale(expandReduced(ctx, 18), numel(y) / numel(x)), undefined];
  }),
  ReduceMax: reduction(18, -Infinity, Math.max),
  ReduceMin: reduction(18, Infinity, Math.min),
  ReduceProd: reduction(18, 1, (a, x) => a * x),
};
