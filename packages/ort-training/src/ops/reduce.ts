/** Reductions, softmax, arg-extremes and cumulative sums. */
import { attrInt, attrInts } from '../graph.js';
import { DataType, fromNumbers, numel, toNumbers, type HostTensor } from '../tensor.js';
import { fail, input, normAxis, optionalConst, strides } from './common.js';
import type { GradContext, InferContext, OpDef, OpTable, TensorType } from './types.js';

/** Reduction axes: attribute before the op's "axes as input" opset, input after. */
export function reduceAxes(ctx: InferContext, inputSince: number): number[] | undefined {
  const rank = input(ctx, 0).dims.length;
  const raw = ctx.opset >= inputSince ? optionalConst(ctx, 1) : attrInts(ctx.node, 'axes');
  if (ctx.opset >= inputSince && ctx.node.inputs[1] && !raw) fail(ctx.node, 'axes must be a constant or computable from static shapes');
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

/** For each element of `dims` (row-major), the index of its slice along `axes` (the keepdims output index). */
function sliceIndex(dims: number[], axes: number[]): { of: Int32Array; count: number } {
  const keptDims = dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const s = strides(dims),
    ks = strides(keptDims),
    of = new Int32Array(numel(dims));
  for (let k = 0; k < of.length; k++) {
    let r = k,
      o = 0;
    for (let i = 0; i < dims.length; i++) {
      const c = Math.floor(r / s[i]!);
      r %= s[i]!;
      if (!axes.includes(i)) o += c * ks[i]!;
    }
    of[k] = o;
  }
  return { of, count: numel(keptDims) };
}

/** Host reduction for folding. */
export function reduceEval(ctx: InferContext, axes: number[], init: number, f: (acc: number, x: number) => number, fin = (acc: number, _n: number) => acc) {
  const t = input(ctx, 0),
    x = toNumbers(ctx.values[0]!);
  const out = reducedType(ctx, axes);
  const { of, count: nOut } = sliceIndex(t.dims, axes);
  const acc = new Array<number>(nOut).fill(init);
  for (let k = 0; k < x.length; k++) acc[of[k]!] = f(acc[of[k]!]!, x[k]!);
  const count = axes.reduce((a, i) => a * t.dims[i]!, 1);
  return [
    fromNumbers(
      out.dtype,
      out.dims,
      acc.map((a) => fin(a, count)),
    ),
  ];
}

/** The reduced axes of a node seen from a gradient rule. */
function gradAxes(ctx: GradContext, inputSince: number): number[] {
  return effectiveAxes({ ...ctx, inputs: ctx.inputs.map((t) => t?.type), values: ctx.inputs.map((t) => t?.value) }, inputSince);
}

/** A reduced tensor (y or dy) reshaped to keepdims form, so that it broadcasts against x. */
function keptShape(ctx: GradContext, name: string, axes: number[]): string {
  return ctx.b.reshape(
    name,
    ctx.inputs[0]!.type.dims.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
}

/**
 * A reduction whose gradient is `dx(x, yk, dk)` with y and dy in keepdims form (broadcasting against x).
 * With noop_with_empty_axes and no axes nothing is summed but the elementwise part stays (onnxruntime's
 * ReduceL1 gives |x| then); every rule below holds for empty axes as written.
 */
function reduction(
  inputSince: number,
  init: number,
  f: (acc: number, x: number) => number,
  fin?: (acc: number, n: number) => number,
  dx?: (ctx: GradContext, g: { x: string; yk: string; dk: string; axes: number[] }) => string,
): OpDef {
  return {
    infer: (ctx) => [reducedType(ctx, effectiveAxes(ctx, inputSince))],
    evaluate: (ctx) => reduceEval(ctx, effectiveAxes(ctx, inputSince), init, f, fin),
    ...(dx
      ? {
          gradient: (ctx: GradContext) => {
            const axes = gradAxes(ctx, inputSince),
              d = ctx.dOutputs[0]!;
            return [dx(ctx, { x: ctx.inputs[0]!.name, yk: keptShape(ctx, ctx.outputs[0]!.name, axes), dk: keptShape(ctx, d, axes), axes }), undefined];
          },
        }
      : {}),
  };
}

/** The output gradient broadcast back over the reduced axes (re-inserting them when keepdims=0). */
export function expandReduced(ctx: GradContext, inputSince: number): string {
  return ctx.b.expand(keptShape(ctx, ctx.dOutputs[0]!, gradAxes(ctx, inputSince)), ctx.inputs[0]!.type.dims);
}

/**
 * ReduceMax/ReduceMin: the gradient goes to the positions attaining the extreme, shared equally between
 * ties (as PyTorch's amax/amin): dx = [x == y] dy / count.
 */
const extremeGradient = (ctx: GradContext, { x, yk, dk, axes }: { x: string; yk: string; dk: string; axes: number[] }) => {
  const b = ctx.b,
    mask = b.cast(b.op('Equal', [x, yk]), ctx.inputs[0]!.type.dtype);
  return b.mul(mask, b.div(dk, b.reduceSum(mask, axes, true)));
};

/** Softmax axes: one axis from opset 13 (default -1); before, all axes from `axis` on (default 1, the 2-D flattening). */
function softmaxAxes(node: InferContext['node'], opset: number, rank: number): number[] {
  if (opset >= 13) return [normAxis(node, attrInt(node, 'axis', -1), rank)];
  const a = normAxis(node, attrInt(node, 'axis', 1), rank);
  return Array.from({ length: rank - a }, (_, i) => a + i);
}

/**
 * sum(dP * P) over the last axis for attention's P = softmax(S) whose only reader is O = P @ V: there
 * dP = dO @ V^T, so the row sums are sum(dO * O) over O's last axis (FlashAttention's D), formed on [.., T, d]
 * instead of [.., T, T]: one T x T product and reduction fewer, and one T x T temporary less. Undefined when
 * the pattern does not hold (P read elsewhere, an output, broadcast in the product, another axis).
 */
function attentionRowDot(ctx: GradContext, axes: number[]): string | undefined {
  const y = ctx.outputs[0]!,
    rank = y.type.dims.length;
  if (rank < 2 || axes.length !== 1 || axes[0] !== rank - 1 || ctx.isOutput(y.name)) return undefined;
  const readers = ctx.consumers(y.name);
  const mm = readers[0];
  if (readers.length !== 1 || !mm || mm.opType !== 'MatMul' || (mm.domain !== '' && mm.domain !== 'ai.onnx')) return undefined;
  if (mm.inputs[0] !== y.name || mm.inputs[1] === y.name || !mm.outputs[0]) return undefined;
  const o = mm.outputs[0],
    oDims = ctx.b.dims(o),
    vDims = ctx.b.dims(mm.inputs[1]!);
  // O must be [..batch of P.., T, d]: P not broadcast against V's batch axes, V a matrix (not a vector)
  if (vDims.length < 2 || oDims.length !== rank || oDims.slice(0, -1).some((n, i) => n !== y.type.dims[i])) return undefined;
  const dO = ctx.gradientOf(o);
  if (!dO) return undefined;
  return ctx.b.reduceSum(ctx.b.mul(dO, o), [rank - 1], true);
}

/** Host (log-)softmax over `axes` for folding. */
function softmaxEval(ctx: InferContext, log: boolean): HostTensor[] {
  const t = input(ctx, 0),
    x = toNumbers(ctx.values[0]!);
  const { of, count } = sliceIndex(t.dims, softmaxAxes(ctx.node, ctx.opset, t.dims.length));
  const max = new Array<number>(count).fill(-Infinity),
    sum = new Array<number>(count).fill(0);
  x.forEach((v, k) => {
    max[of[k]!] = Math.max(max[of[k]!]!, v);
  });
  x.forEach((v, k) => {
    sum[of[k]!]! += Math.exp(v - max[of[k]!]!);
  });
  const y = x.map((v, k) => (log ? v - max[of[k]!]! - Math.log(sum[of[k]!]!) : Math.exp(v - max[of[k]!]!) / sum[of[k]!]!));
  return [fromNumbers(t.dtype, t.dims, y)];
}

function argExtreme(better: (a: number, b: number) => boolean): OpDef {
  const spec = (ctx: InferContext) => {
    const dims = input(ctx, 0).dims,
      axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), dims.length);
    const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
    return { dims, axis, outDims: keep ? dims.map((d, i) => (i === axis ? 1 : d)) : dims.filter((_, i) => i !== axis) };
  };
  return {
    infer: (ctx) => [{ dtype: DataType.INT64, dims: spec(ctx).outDims }],
    evaluate: (ctx) => {
      const { dims, axis, outDims } = spec(ctx),
        x = toNumbers(ctx.values[0]!),
        last = attrInt(ctx.node, 'select_last_index', 0) !== 0;
      const { of, count } = sliceIndex(dims, [axis]),
        stride = strides(dims)[axis]!;
      const best = new Array<number>(count).fill(NaN),
        at = new Array<number>(count).fill(0);
      x.forEach((v, k) => {
        const o = of[k]!,
          pos = Math.floor(k / stride) % dims[axis]!;
        if (Number.isNaN(best[o]!) || better(v, best[o]!) || (last && v === best[o])) {
          best[o] = v;
          at[o] = pos;
        }
      });
      return [fromNumbers(DataType.INT64, outDims, at)];
    },
    nonDifferentiable: true,
  };
}

/** CumSum along a constant axis; `exclusive` skips the element itself, `reverse` runs from the end. */
function cumsumEval(ctx: InferContext): HostTensor[] {
  const t = input(ctx, 0),
    x = toNumbers(ctx.values[0]!);
  const axis = normAxis(ctx.node, toNumbers(ctx.values[1]!)[0]!, t.dims.length);
  const exclusive = attrInt(ctx.node, 'exclusive', 0) !== 0,
    reverse = attrInt(ctx.node, 'reverse', 0) !== 0;
  const n = t.dims[axis]!,
    stride = strides(t.dims)[axis]!,
    y = new Array<number>(x.length).fill(0);
  for (let base = 0; base < x.length; base++) {
    if (Math.floor(base / stride) % n !== 0) continue; // one pass per line along the axis, from its first element
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const k = base + (reverse ? n - 1 - j : j) * stride;
      if (exclusive) {
        y[k] = acc;
        acc += x[k]!;
      } else {
        acc += x[k]!;
        y[k] = acc;
      }
    }
  }
  return [fromNumbers(t.dtype, t.dims, y)];
}

export const reduceOps: OpTable = {
  ReduceSum: reduction(
    13,
    0,
    (a, x) => a + x,
    undefined,
    (ctx, { dk }) => ctx.b.expand(dk, ctx.inputs[0]!.type.dims),
  ),
  ReduceMean: reduction(
    18,
    0,
    (a, x) => a + x,
    (a, n) => a / n,
    (ctx, { dk }) => {
      const x = ctx.inputs[0]!.type.dims,
        y = ctx.outputs[0]!.type.dims;
      return ctx.b.expand(ctx.b.scale(dk, numel(y) / numel(x)), x);
    },
  ),
  ReduceMax: reduction(18, -Infinity, Math.max, undefined, extremeGradient),
  ReduceMin: reduction(18, Infinity, Math.min, undefined, extremeGradient),
  /** dx = dy y / x: the product of the other elements, valid for nonzero x only (a zero x gives NaN/Inf, unlike PyTorch). */
  ReduceProd: reduction(
    18,
    1,
    (a, x) => a * x,
    undefined,
    (ctx, { x, yk, dk }) => ctx.b.div(ctx.b.mul(dk, yk), x),
  ),
  /** y = sqrt(sum x^2): dx = dy x / y, zero where y = 0 (as PyTorch's norm). */
  ReduceL2: reduction(
    18,
    0,
    (a, x) => a + x * x,
    (a) => Math.sqrt(a),
    (ctx, { x, yk, dk }) => {
      const b = ctx.b,
        dtype = ctx.inputs[0]!.type.dtype,
        zero = b.scalar(0, dtype);
      return b.mul(x, b.op('Where', [b.op('Equal', [yk, zero]), zero, b.div(dk, yk)]));
    },
  ),
  ReduceL1: reduction(
    18,
    0,
    (a, x) => a + Math.abs(x),
    undefined,
    (ctx, { x, dk }) => ctx.b.mul(ctx.b.op('Sign', [x]), dk),
  ),
  ReduceSumSquare: reduction(
    18,
    0,
    (a, x) => a + x * x,
    undefined,
    (ctx, { x, dk }) => ctx.b.mul(x, ctx.b.scale(dk, 2)),
  ), // 2 x dy
  /** y = log sum e^x: dx = dy e^(x - y) (the softmax of x). */
  ReduceLogSumExp: reduction(
    18,
    0,
    (a, x) => a + Math.exp(x),
    Math.log,
    (ctx, { x, yk, dk }) => ctx.b.mul(dk, ctx.b.op('Exp', [ctx.b.sub(x, yk)])),
  ),
  /** y = log sum x: dx = dy / sum x = dy e^(-y). */
  ReduceLogSum: reduction(
    18,
    0,
    (a, x) => a + x,
    Math.log,
    (ctx, { yk, dk }) => ctx.b.expand(ctx.b.div(dk, ctx.b.op('Exp', [yk])), ctx.inputs[0]!.type.dims),
  ),

  /** dx = y (dy - sum(dy y)) over the softmax axes: four ops on attention's hot path (see `attentionRowDot`). */
  Softmax: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    evaluate: (ctx) => softmaxEval(ctx, false),
    gradient: (ctx) => {
      const b = ctx.b,
        d = ctx.dOutputs[0]!,
        y = ctx.outputs[0]!.name;
      const axes = softmaxAxes(ctx.node, ctx.opset, ctx.inputs[0]!.type.dims.length);
      return [b.mul(y, b.sub(d, attentionRowDot(ctx, axes) ?? b.reduceSum(b.mul(d, y), axes, true)))];
    },
  },
  /** dx = dy - e^y sum(dy) over the softmax axes. */
  LogSoftmax: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    evaluate: (ctx) => softmaxEval(ctx, true),
    gradient: (ctx) => {
      const b = ctx.b,
        d = ctx.dOutputs[0]!,
        y = ctx.outputs[0]!.name;
      const axes = softmaxAxes(ctx.node, ctx.opset, ctx.inputs[0]!.type.dims.length);
      return [b.sub(d, b.mul(b.op('Exp', [y]), b.reduceSum(d, axes, true)))];
    },
  },
  ArgMax: argExtreme((a, b) => a > b),
  ArgMin: argExtreme((a, b) => a < b),
  /** The transpose of a cumulative sum is the cumulative sum the other way round (same exclusivity). */
  CumSum: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    evaluate: cumsumEval,
    gradient: (ctx) => [
      ctx.b.op('CumSum', [ctx.dOutputs[0]!, ctx.inputs[1]!.name], {
        exclusive: attrInt(ctx.node, 'exclusive', 0),
        reverse: 1 - attrInt(ctx.node, 'reverse', 0),
      }),
      undefined,
    ],
  },
};
