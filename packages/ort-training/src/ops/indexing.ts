/**
 * Index-driven data movement: Gather (embedding lookups, torch's x[:, i]), GatherElements, GatherND and the
 * Scatter ops their gradients are made of. A gather's gradient scatter-adds dy into zeros (indices repeat).
 */
import { attrInt, attrString } from '../graph.js';
import { DataType, fromNumbers, toNumbers } from '../tensor.js';
import { fail, input, normAxis, strides } from './common.js';
import { gatherEval, knownValues, noGradient, padAxis, range } from './movement.js';
import type { GradContext, OpTable } from './types.js';

const axisOf = (ctx: { node: GradContext['node'] }, rank: number) => normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), rank);

/** Indices as int64 (ScatterND/ScatterElements want int64), normalized to non-negative when they are constants. */
function int64Indices(ctx: GradContext, size: number, extraUnitAxis: boolean): string {
  const b = ctx.b,
    idx = ctx.inputs[1]!,
    known = knownValues(idx);
  const dims = extraUnitAxis ? [...idx.type.dims, 1] : idx.type.dims;
  if (known)
    return b.constant(
      fromNumbers(
        DataType.INT64,
        dims,
        known.map((i) => (i < 0 ? i + size : i)),
      ),
      'indices',
    );
  return b.reshape(b.cast(idx.name, DataType.INT64), dims);
}

export const indexingOps: OpTable = {
  Gather: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims,
        idx = input(ctx, 1).dims,
        axis = axisOf(ctx, d.length);
      return [{ dtype: input(ctx, 0).dtype, dims: [...d.slice(0, axis), ...idx, ...d.slice(axis + 1)] }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        axis = axisOf(ctx, d.length);
      const ind = toNumbers(ctx.values[1]!).map((i) => (i < 0 ? i + d[axis]! : i));
      const out = indexingOps.Gather!.infer(ctx)[0]!.dims,
        s = strides(d),
        ir = ctx.inputs[1]!.dims.length,
        is = strides(ctx.inputs[1]!.dims);
      return [
        gatherEval(ctx.values[0]!, out, (o) => {
          let k = 0;
          for (let i = 0; i < axis; i++) k += o[i]! * s[i]!;
          let flat = 0;
          for (let i = 0; i < ir; i++) flat += o[axis + i]! * is[i]!;
          k += ind[flat]! * s[axis]!;
          for (let i = axis + 1; i < d.length; i++) k += o[i - 1 + ir]! * s[i]!;
          return k;
        }),
      ];
    },
    gradient: (ctx) => {
      if (!ctx.needs[0]) return [undefined, undefined];
      const b = ctx.b,
        dy = ctx.dOutputs[0]!,
        data = ctx.inputs[0]!.type,
        idx = ctx.inputs[1]!;
      const r = data.dims.length,
        axis = axisOf(ctx, r),
        n = data.dims[axis]!,
        ir = idx.type.dims.length;
      const known = knownValues(idx);
      if (known && ir === 0) {
        // y = x[..., i, ...] for one constant i: dx is dy at i along the axis, zeros around it
        const i = known[0]! < 0 ? known[0]! + n : known[0]!;
        return [padAxis(b, b.unsqueeze(dy, [axis]), axis, i, n - 1 - i), undefined];
      }
      // dx[..., j, ...] = sum over positions p with idx[p] = j of dy[..., p, ...]: a ScatterND (add) into zeros
      // with the gathered axis moved to the front, so each index addresses one whole slice (an embedding row)
      const updates = b.transpose(dy, [...range(ir).map((i) => axis + i), ...range(axis), ...range(r - axis - 1).map((i) => axis + ir + i)]);
      const front = [n, ...data.dims.slice(0, axis), ...data.dims.slice(axis + 1)];
      const scattered = b.op('ScatterND', [b.zeros({ dtype: data.dtype, dims: front }), int64Indices(ctx, n, true), updates], { reduction: 'add' });
      return [b.transpose(scattered, [...range(axis).map((i) => i + 1), 0, ...range(r - axis - 1).map((i) => axis + 1 + i)]), undefined];
    },
  },
  GatherElements: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: [...input(ctx, 1).dims] }],
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        axis = axisOf(ctx, d.length),
        s = strides(d);
      const idxDims = ctx.inputs[1]!.dims,
        is = strides(idxDims),
        ind = toNumbers(ctx.values[1]!);
      return [
        gatherEval(ctx.values[0]!, idxDims, (o) =>
          o.reduce((a, v, i) => {
            if (i !== axis) return a + v * s[i]!;
            const j = ind[o.reduce((f, w, k) => f + w * is[k]!, 0)]!;
            return a + (j < 0 ? j + d[axis]! : j) * s[i]!;
          }, 0),
        ),
      ];
    },
    // dx = zeros with dy added at each gathered position
    gradient: (ctx) => {
      if (!ctx.needs[0]) return [undefined, undefined];
      const b = ctx.b,
        data = ctx.inputs[0]!.type,
        axis = axisOf(ctx, data.dims.length);
      const indices = int64Indices(ctx, data.dims[axis]!, false);
      return [b.op('ScatterElements', [b.zeros(data), indices, ctx.dOutputs[0]!], { axis, reduction: 'add' }), undefined];
    },
  },
  GatherND: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims,
        idx = input(ctx, 1).dims,
        bd = attrInt(ctx.node, 'batch_dims', 0),
        k = idx[idx.length - 1]!;
      if (bd + k > d.length) fail(ctx.node, `index depth ${k} after ${bd} batch dims exceeds rank ${d.length}`);
      return [{ dtype: input(ctx, 0).dtype, dims: [...idx.slice(0, -1), ...d.slice(bd + k)] }];
    },
    // dx = zeros with each dy slice added at its index tuple
    gradient: (ctx) => {
      if (!ctx.needs[0]) return [undefined, undefined];
      if (attrInt(ctx.node, 'batch_dims', 0) !== 0) noGradient(ctx.node, 'batch_dims > 0');
      const b = ctx.b,
        idx = b.cast(ctx.inputs[1]!.name, DataType.INT64);
      return [b.op('ScatterND', [b.zeros(ctx.inputs[0]!.type), idx, ctx.dOutputs[0]!], { reduction: 'add' }), undefined];
    },
  },
  ScatterND: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    gradient: (ctx) => scatterGrad(ctx, 'ScatterND', 'GatherND', {}),
  },
  ScatterElements: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    gradient: (ctx) => scatterGrad(ctx, 'ScatterElements', 'GatherElements', { axis: axisOf(ctx, ctx.inputs[0]!.type.dims.length) }),
  },
};

/**
 * y = data with updates written (reduction none) or added (add) at the indices. d updates = dy gathered at
 * the indices; d data = dy, with the overwritten positions zeroed when writing.
 */
function scatterGrad(ctx: GradContext, scatter: string, gather: string, attributes: { axis?: number }): (string | undefined)[] {
  const b = ctx.b,
    dy = ctx.dOutputs[0]!,
    reduction = attrString(ctx.node, 'reduction', 'none');
  if (reduction !== 'none' && reduction !== 'add') noGradient(ctx.node, `reduction ${reduction}`);
  const indices = ctx.inputs[1]!.name;
  const dData = !ctx.needs[0] ? undefined : reduction === 'add' ? dy : b.op(scatter, [dy, indices, b.zeros(ctx.inputs[2]!.type)], attributes);
  const dUpdates = ctx.needs[2] ? b.op(gather, [dy, indices], attributes) : undefined;
  return [dData, undefined, dUpdates];
}
