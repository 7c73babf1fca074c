/**
 * Normalizations: LayerNormalization, InstanceNormalization (torch's GroupNorm export), GroupNormalization
 * (opset 18: scale/bias per group; 21: per channel) and BatchNormalization in inference mode.
 *
 * Backward of xhat = (x - mean) * invstd over a set of axes, with dxhat = dL/dxhat:
 *   dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
 * xhat and invstd are recomputed by one fused LayerNormalization (instance and group statistics are layer
 * statistics of a reshaped input), cheaper than keeping the forward's intermediates alive.
 */
import { attrFloat, attrInt } from '../graph.js';
import type { Builder } from '../builder.js';
import { DataType, numel, toNumbers } from '../tensor.js';
import { fail, input, normAxis } from './common.js';
import type { GradContext, InferContext, OpTable, TensorType } from './types.js';

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
const sameAsInput = (ctx: InferContext): TensorType[] => [{ ...input(ctx, 0) }];

/** xhat and invstd (keepdims) of `x` standardized over axes >= axis. */
function standardize(b: Builder, x: string, axis: number, epsilon: number, stashType = 1): { xhat: string; invstd: string } {
  const t = b.type(x);
  const ones = b.expand(b.scalar(1, t.dtype), t.dims.slice(axis));
  const [xhat, , invstd] = b.emit('LayerNormalization', [x, ones], 3, { axis, epsilon: { float: epsilon }, stash_type: stashType }, 'standardize');
  return { xhat: xhat!, invstd: b.cast(invstd!, t.dtype) }; // statistics come in the stash type
}

/** dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over `axes`. */
function standardizeBackward(b: Builder, dxhat: string, xhat: string, invstd: string, axes: number[]): string {
  const mean = (t: string) => b.reduceAxesOp('ReduceMean', t, axes, true);
  return b.mul(invstd, b.sub(b.sub(dxhat, mean(dxhat)), b.mul(xhat, mean(b.mul(dxhat, xhat)))));
}

/** Y = xhat * Scale + B over axes >= axis; optional outputs Mean and InvStdDev may carry gradients too. */
function layerNormGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  const X = ctx.inputs[0]!,
    dims = X.type.dims,
    dtype = X.type.dtype;
  const axis = normAxis(node, attrInt(node, 'axis', -1), dims.length),
    axes = range(axis, dims.length);
  const D = numel(dims.slice(axis));
  const { xhat, invstd } = standardize(b, X.name, axis, attrFloat(node, 'epsilon', 1e-5), attrInt(node, 'stash_type', 1));
  const [dy, dMean, dInvStd] = ctx.dOutputs;
  const scale = ctx.inputs[1]!,
    bias = ctx.inputs[2];
  let dX: string | undefined;
  if (needs[0]) {
    const parts: string[] = [];
    if (dy) parts.push(standardizeBackward(b, b.mul(dy, scale.name), xhat, invstd, axes));
    // Mean = mean(x): d/dx = 1/D.
    if (dMean) parts.push(b.expand(b.scale(b.cast(dMean, dtype), 1 / D), dims));
    // InvStdDev = (var + eps)^-1/2: d/dx = -invstd^3 (x - mean) / D = -invstd^2 xhat / D.
    if (dInvStd) parts.push(b.mul(b.scale(b.mul(b.cast(dInvStd, dtype), b.mul(invstd, invstd)), -1 / D), xhat));
    dX = parts.length ? b.sum(parts) : b.zeros(X.type);
  }
  const dScale = needs[1] ? (dy ? b.sumToShape(b.mul(dy, xhat), scale.type.dims) : b.zeros(scale.type)) : undefined;
  const dB = needs[2] && bias ? (dy ? b.sumToShape(dy, bias.type.dims) : b.zeros(bias.type)) : undefined;
  return [dX, dScale, dB];
}

/** Y[n, c] = xhat[n, c] * scale[c] + B[c], xhat standardized over the spatial axes of each (n, c). */
function instanceNormGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  const X = ctx.inputs[0]!,
    dims = X.type.dims,
    dy = ctx.dOutputs[0]!;
  const spatial = range(2, dims.length),
    perChannel = [dims[1]!, ...spatial.map(() => 1)];
  const { xhat, invstd } = standardize(b, X.name, 2, attrFloat(node, 'epsilon', 1e-5));
  // torch exports GroupNorm as InstanceNormalization with a constant unit scale: dxhat is then dY itself.
  const scale = ctx.inputs[1]!,
    unitScale = scale.value !== undefined && toNumbers(scale.value).every((v) => v === 1);
  const dxhat = () => (unitScale ? dy : b.mul(dy, b.reshape(scale.name, perChannel)));
  const dX = needs[0] ? standardizeBackward(b, dxhat(), xhat, invstd, spatial) : undefined;
  const dScale = needs[1] ? b.reduceSum(b.mul(dy, xhat), [0, ...spatial], false) : undefined;
  const dB = needs[2] ? b.reduceSum(dy, [0, ...spatial], false) : undefined;
  return [dX, dScale, dB];
}

/**
 * Statistics per (n, group) over [C/G, spatial]: computed on x as [N, G, C/G * S], worked on as
 * [N, G, C/G, S] so that a per-group (opset 18) or per-channel (opset 21) scale broadcasts.
 */
function groupNormGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  const X = ctx.inputs[0]!,
    dims = X.type.dims,
    dy = ctx.dOutputs[0]!;
  const scale = ctx.inputs[1]!,
    bias = ctx.inputs[2]!;
  const G = attrInt(node, 'num_groups', 1),
    N = dims[0]!,
    Cg = dims[1]! / G,
    S = numel(dims.slice(2));
  const perChannel = ctx.opset >= 21;
  const { xhat, invstd } = standardize(b, b.reshape(X.name, [N, G, Cg * S]), 2, attrFloat(node, 'epsilon', 1e-5), attrInt(node, 'stash_type', 1));
  const four = [N, G, Cg, S];
  const xhat4 = b.reshape(xhat, four),
    dy4 = b.reshape(dy, four);
  const dX = needs[0]
    ? b.reshape(standardizeBackward(b, b.mul(dy4, b.reshape(scale.name, perChannel ? [G, Cg, 1] : [G, 1, 1])), xhat4, b.unsqueeze(invstd, [3]), [2, 3]), dims)
    : undefined;
  const paramAxes = perChannel ? [0, 3] : [0, 2, 3];
  const dScale = needs[1] ? b.reshape(b.reduceSum(b.mul(dy4, xhat4), paramAxes, false), scale.type.dims) : undefined;
  const dB = needs[2] ? b.reshape(b.reduceSum(dy4, paramAxes, false), bias.type.dims) : undefined;
  return [dX, dScale, dB];
}

/**
 * Inference mode: Y = (x - mean) * invstd * scale + B with invstd = (var + eps)^-1/2 per channel. Each
 * term is itself a BatchNormalization with zero or unit parameters, so no square root needs emitting:
 * dX = BN(dY; scale, 0, 0, var), xhat = BN(x; 1, 0, mean, var), invstd = BN(1; 1, 0, 0, var).
 */
function batchNormGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  if (attrInt(node, 'training_mode', 0)) fail(node, 'the gradient of BatchNormalization in training mode is not supported (export the model in eval mode)');
  const [X, scale, , mean, variance] = ctx.inputs as NonNullable<GradContext['inputs'][number]>[];
  const dims = X!.type.dims,
    dtype = X!.type.dtype,
    C = dims[1]!,
    dy = ctx.dOutputs[0]!;
  const eps = { float: attrFloat(node, 'epsilon', 1e-5) };
  const zeros = b.zeros({ dtype, dims: [C] }),
    ones = b.expand(b.scalar(1, dtype), [C]);
  const bn = (x: string, s: string, m: string) => b.op('BatchNormalization', [x, s, zeros, m, variance!.name], { epsilon: eps });
  const axes = [0, ...range(2, dims.length)];
  const dXfull = needs[0] || needs[3] ? bn(dy, scale!.name, zeros) : undefined;
  const dScale = needs[1] || needs[4] ? b.reduceSum(b.mul(dy, bn(X!.name, ones, mean!.name)), axes, false) : undefined;
  const dB = needs[2] ? b.reduceSum(dy, axes, false) : undefined;
  // d/dmean = -scale * invstd summed; d/dvar = -1/2 scale invstd^2 * sum(dY * xhat).
  const dMean = needs[3] ? b.neg(b.reduceSum(dXfull!, axes, false)) : undefined;
  let dVar: string | undefined;
  if (needs[4]) {
    const invstd = b.reshape(bn(b.expand(b.scalar(1, dtype), [1, C]), ones, zeros), [C]);
    dVar = b.scale(b.mul(b.mul(dScale!, scale!.name), b.mul(invstd, invstd)), -0.5);
  }
  return [needs[0] ? dXfull : undefined, needs[1] ? dScale : undefined, dB, dMean, dVar];
}

export const normOps: OpTable = {
  LayerNormalization: {
    infer: (ctx) => {
      const x = input(ctx, 0),
        axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', -1), x.dims.length);
      const stash = attrInt(ctx.node, 'stash_type', 1) === 1 ? DataType.FLOAT : x.dtype;
      const stats = { dtype: stash, dims: x.dims.map((d, i) => (i < axis ? d : 1)) };
      return [{ ...x }, stats, { ...stats }];
    },
    gradient: layerNormGradient,
  },
  InstanceNormalization: { infer: sameAsInput, gradient: instanceNormGradient },
  GroupNormalization: {
    infer: (ctx) => {
      const x = input(ctx, 0),
        G = attrInt(ctx.node, 'num_groups', 1);
      if (x.dims.length < 2 || x.dims[1]! % G !== 0) fail(ctx.node, `${x.dims[1]} channels do not split into ${G} groups`);
      return [{ ...x }];
    },
    gradient: groupNormGradient,
  },
  BatchNormalization: {
    infer: (ctx) => {
      const x = input(ctx, 0),
        stat = { dtype: x.dtype, dims: [x.dims[1]!] };
      return [{ ...x }, stat, { ...stat }];
    },
    gradient: batchNormGradient,
  },
};
