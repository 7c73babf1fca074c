/** Shape and data-movement ops, and the constant-producing ops of torch.onnx shape arithmetic. */
import type { Builder } from '../builder.js';
import { attrInt, attrInts, attrString, attrTensor } from '../graph.js';
import { tensorProtoToHost } from '../model.js';
import { DataType, fromNumbers, numel, toNumbers, type HostTensor } from '../tensor.js';
import { constInput, fail, input, normAxis, strides } from './common.js';
import { asInfer, emitPad, emitSlice, gatherEval, noGradient, padAxis, range, TO_END } from './movement.js';
import { indexingOps } from './indexing.js';
import { resizeOps } from './resize.js';
import type { InferContext, OpDef, OpTable } from './types.js';

export { gatherEval };

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
  return ctx.opset >= 13 ? constInput(ctx, 1, 'axes') : (attrInts(ctx.node, 'axes') ?? []);
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
      const d = ctx.inputs[0]!.dims,
        [s, e] = shapeRange(ctx, d.length);
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
      const d = input(ctx, 0).dims,
        axes = unsqueezeAxes(ctx),
        r = d.length + axes.length;
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
      const d = input(ctx, 0).dims,
        axes = squeezeAxes(ctx)?.map((a) => normAxis(ctx.node, a, d.length));
      for (const a of axes ?? []) if (d[a] !== 1) fail(ctx.node, `cannot squeeze axis ${a} of size ${d[a]}`);
      return [{ dtype: input(ctx, 0).dtype, dims: d.filter((x, i) => (axes ? !axes.includes(i) : x !== 1)) }];
    },
    evaluate: (ctx) => [same(ctx, shapeOps.Squeeze!.infer(ctx)[0]!.dims)],
    gradient: (ctx) => [ctx.b.reshape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Expand: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims,
        s = constInput(ctx, 1, 'shape');
      const r = Math.max(d.length, s.length),
        out: number[] = [];
      for (let i = 0; i < r; i++) {
        const a = d[i - r + d.length] ?? 1,
          b = s[i - r + s.length] ?? 1;
        if (a !== b && a !== 1 && b !== 1) fail(ctx.node, `cannot expand [${d}] to [${s}]`);
        out.push(a === 1 ? b : a);
      }
      return [{ dtype: input(ctx, 0).dtype, dims: out }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        out = shapeOps.Expand!.infer(ctx)[0]!.dims,
        s = strides(d),
        off = out.length - d.length;
      return [gatherEval(ctx.values[0]!, out, (idx) => d.reduce((a, di, i) => a + (di === 1 ? 0 : idx[i + off]!) * s[i]!, 0))];
    },
    gradient: (ctx) => [ctx.b.sumToShape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined],
  },
  Transpose: {
    infer: (ctx) => {
      const d = input(ctx, 0).dims,
        perm = attrInts(ctx.node, 'perm') ?? d.map((_, i) => d.length - 1 - i);
      return [{ dtype: input(ctx, 0).dtype, dims: perm.map((p) => d[p]!) }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        perm = attrInts(ctx.node, 'perm') ?? d.map((_, i) => d.length - 1 - i),
        s = strides(d);
      return [
        gatherEval(
          ctx.values[0]!,
          perm.map((p) => d[p]!),
          (idx) => idx.reduce((a, v, i) => a + v * s[perm[i]!]!, 0),
        ),
      ];
    },
    gradient: (ctx) => {
      const r = ctx.inputs[0]!.type.dims.length;
      const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const inv = new Array<number>(r);
      perm.forEach((p, i) => {
        inv[p] = i;
      });
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
      const outer = numel(out.dims.slice(0, axis)),
        vals: number[] = [];
      const parts = ctx.values.map((v) => toNumbers(v!));
      for (let o = 0; o < outer; o++)
        parts.forEach((p, j) => {
          const block = numel(ctx.inputs[j]!.dims.slice(axis));
          for (let k = 0; k < block; k++) vals.push(p[o * block + k]!);
        });
      return [fromNumbers(out.dtype, out.dims, vals)];
    },
    // dx_i = the i-th block of dy along the axis
    gradient: (ctx) => {
      const axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), ctx.outputs[0]!.type.dims.length);
      const parts = splitAlong(
        ctx.b,
        ctx.dOutputs[0]!,
        axis,
        ctx.inputs.map((t) => t!.type.dims[axis]!),
      );
      return parts.map((p, i) => (ctx.needs[i] ? p : undefined));
    },
  },
  Slice: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: sliceSpec(ctx).map((s) => s.count) }],
    evaluate: (ctx) => {
      const spec = sliceSpec(ctx),
        st = strides(ctx.inputs[0]!.dims);
      return [
        gatherEval(
          ctx.values[0]!,
          spec.map((s) => s.count),
          (idx) => idx.reduce((a, v, i) => a + (spec[i]!.start + v * spec[i]!.step) * st[i]!, 0),
        ),
      ];
    },
    gradient: (ctx) => [sliceGrad(ctx.b, ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims, sliceSpec(asInfer(ctx)))],
  },
  Split: {
    infer: (ctx) => {
      const { axis, sizes } = splitSpec(ctx),
        t = input(ctx, 0);
      return sizes.map((n) => ({ dtype: t.dtype, dims: t.dims.map((d, i) => (i === axis ? n : d)) }));
    },
    evaluate: (ctx) => {
      const { axis, sizes } = splitSpec(ctx),
        d = ctx.inputs[0]!.dims,
        s = strides(d);
      let offset = 0;
      return sizes.map((n) => {
        const from = offset;
        offset += n;
        return gatherEval(
          ctx.values[0]!,
          d.map((x, i) => (i === axis ? n : x)),
          (idx) => idx.reduce((a, v, i) => a + (i === axis ? v + from : v) * s[i]!, 0),
        );
      });
    },
    // dx = concat of the output gradients along the axis, zeros for outputs no gradient flows into
    gradient: (ctx) => {
      const { axis } = splitSpec(asInfer(ctx));
      const parts = ctx.outputs.map((o, i) => ctx.dOutputs[i] ?? ctx.b.zeros(o.type));
      return [parts.length === 1 ? parts[0]! : ctx.b.op('Concat', parts, { axis }), undefined];
    },
  },
  Flatten: {
    infer: (ctx) => {
      const t = input(ctx, 0),
        r = t.dims.length,
        a0 = attrInt(ctx.node, 'axis', 1),
        axis = a0 < 0 ? a0 + r : a0;
      if (axis < 0 || axis > r) fail(ctx.node, `axis ${a0} out of range for rank ${r}`);
      return [{ dtype: t.dtype, dims: [numel(t.dims.slice(0, axis)), numel(t.dims.slice(axis))] }];
    },
    evaluate: (ctx) => [same(ctx, shapeOps.Flatten!.infer(ctx)[0]!.dims)],
    gradient: (ctx) => [ctx.b.reshape(ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims)],
  },
  Tile: {
    infer: (ctx) => {
      const t = input(ctx, 0),
        reps = constInput(ctx, 1, 'repeats');
      if (reps.length !== t.dims.length) fail(ctx.node, `${reps.length} repeats for rank ${t.dims.length}`);
      return [{ dtype: t.dtype, dims: t.dims.map((d, i) => d * reps[i]!) }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        s = strides(d);
      return [gatherEval(ctx.values[0]!, shapeOps.Tile!.infer(ctx)[0]!.dims, (idx) => idx.reduce((a, v, i) => a + (v % d[i]!) * s[i]!, 0))];
    },
    // y viewed as [r0, d0, r1, d1, ...] repeats x along each r axis: dx = sum of dy over the r axes
    gradient: (ctx) => {
      const b = ctx.b,
        x = ctx.inputs[0]!.type.dims,
        reps = toNumbers(ctx.inputs[1]!.value!);
      const view: number[] = [],
        repAxes: number[] = [];
      x.forEach((d, i) => {
        if (reps[i] !== 1) {
          repAxes.push(view.length);
          view.push(reps[i]!);
        }
        view.push(d);
      });
      return [b.reshape(b.reduceSum(b.reshape(ctx.dOutputs[0]!, view), repAxes, false), x), undefined];
    },
  },
  Pad: {
    infer: (ctx) => {
      const t = input(ctx, 0),
        pads = padSpec(ctx),
        r = t.dims.length;
      return [{ dtype: t.dtype, dims: t.dims.map((d, i) => d + pads[i]! + pads[i + r]!) }];
    },
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        r = d.length,
        pads = padSpec(ctx),
        mode = attrString(ctx.node, 'mode', 'constant');
      const fill = ctx.node.inputs[2] && ctx.values[2] ? toNumbers(ctx.values[2])[0]! : 0;
      const out = d.map((n, i) => n + pads[i]! + pads[i + r]!),
        s = strides(d),
        x = toNumbers(ctx.values[0]!);
      const src = (j: number, n: number): number => {
        if (j >= 0 && j < n) return j;
        if (mode === 'edge') return j < 0 ? 0 : n - 1;
        if (mode === 'reflect') {
          const p = 2 * (n - 1) || 1,
            m = ((j % p) + p) % p;
          return m < n ? m : p - m;
        }
        if (mode === 'wrap') return ((j % n) + n) % n;
        return -1;
      };
      const flat = gatherEval(fromNumbers(DataType.DOUBLE, [x.length + 1], [...x, fill]), out, (idx) => {
        let k = 0;
        for (let i = 0; i < r; i++) {
          const j = src(idx[i]! - pads[i]!, d[i]!);
          if (j < 0) return x.length;
          k += j * s[i]!;
        }
        return k;
      });
      return [fromNumbers(ctx.inputs[0]!.dtype, out, toNumbers(flat))];
    },
    gradient: (ctx) => {
      const b = ctx.b,
        dy = ctx.dOutputs[0]!,
        x = ctx.inputs[0]!.type.dims,
        r = x.length,
        out = ctx.outputs[0]!.type.dims;
      const pads = padSpec(asInfer(ctx)),
        mode = attrString(ctx.node, 'mode', 'constant');
      if (mode === 'constant') {
        // y is x (cropped where pads < 0) framed by the constant: dx = the framed part of dy, zero where x was cropped
        const axes = range(r).filter((i) => pads[i]! > 0 || pads[i + r]! > 0);
        const core = emitSlice(
          b,
          dy,
          axes,
          axes.map((i) => Math.max(pads[i]!, 0)),
          axes.map((i) => out[i]! - Math.max(pads[i + r]!, 0)),
        );
        const dx = ctx.needs[0]
          ? emitPad(
              b,
              core,
              pads.map((p) => Math.max(-p, 0)),
            )
          : undefined;
        // d constant = sum of dy over the frame = sum(dy) - sum(core)
        const all = range(r),
          cDims = ctx.inputs[2]?.type.dims ?? [];
        const dc = ctx.needs[2] ? b.reshape(b.sub(b.reduceSum(dy, all, false), b.reduceSum(core, all, false)), cDims) : undefined;
        return [dx, undefined, dc, undefined];
      }
      if (pads.some((p) => p < 0)) noGradient(ctx.node, `mode ${mode} with negative pads`);
      if (mode !== 'edge' && mode !== 'reflect') noGradient(ctx.node, `mode ${mode}`);
      // padding is separable: undo it one axis at a time
      let g = dy;
      for (let a = 0; a < r; a++) g = (mode === 'edge' ? edgePadGrad : reflectPadGrad)(b, g, a, pads[a]!, pads[a + r]!, x[a]!);
      return [g, undefined, undefined, undefined];
    },
  },
  Range: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: [rangeArgs(ctx).count] }],
    evaluate: (ctx) => [fromNumbers(ctx.inputs[0]!.dtype, [rangeValues(ctx).length], rangeValues(ctx))],
    nonDifferentiable: true,
  },
  Trilu: {
    infer: (ctx) => [{ ...input(ctx, 0) }],
    evaluate: (ctx) => {
      const d = ctx.inputs[0]!.dims,
        rows = d[d.length - 2]!,
        cols = d[d.length - 1]!,
        x = toNumbers(ctx.values[0]!);
      const keep = triluKeep(ctx);
      return [
        fromNumbers(
          ctx.inputs[0]!.dtype,
          d,
          x.map((v, k) => (keep(Math.floor(k / cols) % rows, k % cols) ? v : 0)),
        ),
      ];
    },
    // y = M * x for a fixed 0/1 mask M: dx = M * dy, i.e. the same Trilu of dy
    gradient: (ctx) => {
      const k = ctx.node.inputs[1];
      return [ctx.b.op('Trilu', k ? [ctx.dOutputs[0]!, k] : [ctx.dOutputs[0]!], { upper: attrInt(ctx.node, 'upper', 1) }), undefined];
    },
  },
  DepthToSpace: blockRearrange((ctx, [n, c, h, w], bs) =>
    attrString(ctx.node, 'mode', 'DCR') === 'CRD'
      ? { view: [n, c / (bs * bs), bs, bs, h, w], perm: [0, 1, 4, 2, 5, 3], out: [n, c / (bs * bs), h * bs, w * bs] }
      : { view: [n, bs, bs, c / (bs * bs), h, w], perm: [0, 3, 4, 1, 5, 2], out: [n, c / (bs * bs), h * bs, w * bs] },
  ),
  SpaceToDepth: blockRearrange((_ctx, [n, c, h, w], bs) => ({
    view: [n, c, h / bs, bs, w / bs, bs],
    perm: [0, 3, 5, 1, 2, 4],
    out: [n, c * bs * bs, h / bs, w / bs],
  })),
  ...indexingOps,
  ...resizeOps,
};

function shapeRange(ctx: InferContext, r: number): [number, number] {
  const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
  return [clamp(attrInt(ctx.node, 'start', 0)), clamp(attrInt(ctx.node, 'end', r))];
}

export interface SliceAxis {
  start: number;
  step: number;
  count: number;
}

/** Per-axis normalized (start, step, count) of a Slice, with ONNX clamping semantics. */
export function sliceSpec(ctx: InferContext): SliceAxis[] {
  const d = input(ctx, 0).dims;
  const starts = ctx.opset >= 10 ? constInput(ctx, 1, 'starts') : attrInts(ctx.node, 'starts')!;
  const ends = ctx.opset >= 10 ? constInput(ctx, 2, 'ends') : attrInts(ctx.node, 'ends')!;
  const axes = (ctx.opset >= 10 ? (ctx.node.inputs[3] ? constInput(ctx, 3, 'axes') : undefined) : attrInts(ctx.node, 'axes')) ?? starts.map((_, i) => i);
  const steps = ctx.opset >= 10 && ctx.node.inputs[4] ? constInput(ctx, 4, 'steps') : starts.map(() => 1);
  const spec: SliceAxis[] = d.map((n) => ({ start: 0, step: 1, count: n }));
  axes.forEach((a0, i) => {
    const a = normAxis(ctx.node, a0, d.length),
      n = d[a]!,
      step = steps[i]!;
    if (step === 0) fail(ctx.node, 'slice step 0');
    let s = starts[i]!,
      e = ends[i]!;
    if (s < 0) s += n;
    if (e < 0) e += n;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), n);
      e = Math.min(Math.max(e, 0), n);
    } else {
      s = Math.min(Math.max(s, -1), n - 1);
      e = Math.min(Math.max(e, -1), n - 1);
    }
    const count = step > 0 ? Math.max(0, Math.ceil((e - s) / step)) : Math.max(0, Math.ceil((s - e) / -step));
    spec[a] = { start: s, step, count };
  });
  return spec;
}

/** Split `x` along `axis` into blocks of `sizes`. */
function splitAlong(b: Builder, x: string, axis: number, sizes: number[]): string[] {
  if (sizes.length === 1) return [x];
  return b.emit('Split', [x, b.int64s(sizes, 'split')], sizes.length, { axis });
}

/** Split sizes: the `split` input (attribute before opset 13), else equal parts (`num_outputs` at 18, last smaller). */
function splitSpec(ctx: InferContext): { axis: number; sizes: number[] } {
  const d = input(ctx, 0).dims,
    axis = normAxis(ctx.node, attrInt(ctx.node, 'axis', 0), d.length),
    n = d[axis]!;
  const given = ctx.opset >= 13 ? (ctx.node.inputs[1] ? constInput(ctx, 1, 'split') : undefined) : attrInts(ctx.node, 'split');
  if (given) {
    if (given.reduce((a, v) => a + v, 0) !== n) fail(ctx.node, `split sizes [${given}] do not add up to ${n}`);
    return { axis, sizes: given };
  }
  const k = attrInt(ctx.node, 'num_outputs') ?? ctx.node.outputs.length;
  if (n % k !== 0 && ctx.opset < 18) fail(ctx.node, `cannot split ${n} into ${k} equal parts`);
  const chunk = Math.ceil(n / k);
  return { axis, sizes: range(k).map((i) => Math.max(0, Math.min(chunk, n - i * chunk))) };
}

/**
 * d Slice: put dy back where the slice took it from, zeros elsewhere. A negative step takes the same elements
 * as a positive one started at the last taken element, in reverse order; a step k > 1 leaves k - 1 zeros
 * between taken elements (pad each element to a row of k, then merge); step 1 just pads.
 */
function sliceGrad(b: Builder, dy: string, x: number[], spec: SliceAxis[]): string {
  if (spec.some((s) => s.count === 0)) return b.zeros({ dtype: b.type(dy).dtype, dims: x });
  const rev = range(x.length).filter((i) => spec[i]!.step < 0 && spec[i]!.count > 1);
  let g = emitSlice(
    b,
    dy,
    rev,
    rev.map(() => -1),
    rev.map(() => -TO_END),
    rev.map(() => -1),
  );
  const fwd = spec.map(({ start, step, count }) =>
    count === 1 ? { start, step: 1, count } : step < 0 ? { start: start + (count - 1) * step, step: -step, count } : { start, step, count },
  );
  const strided = range(x.length).filter((i) => fwd[i]!.step > 1);
  if (strided.length) {
    const rows = fwd.flatMap(({ step, count }) => (step > 1 ? [count, 1] : [count]));
    const r2 = rows.length,
      pads = new Array<number>(2 * r2).fill(0);
    let j = 0;
    for (const { step } of fwd) {
      if (step > 1) {
        pads[j + 1 + r2] = step - 1;
        j += 2;
      } else j += 1;
    }
    g = b.reshape(
      emitPad(b, b.reshape(g, rows), pads),
      fwd.map(({ step, count }) => step * count),
    );
    g = emitSlice(
      b,
      g,
      strided,
      strided.map(() => 0),
      strided.map((i) => (fwd[i]!.count - 1) * fwd[i]!.step + 1),
    );
  }
  const len = fwd.map(({ step, count }) => (count - 1) * step + 1);
  return emitPad(b, g, [...fwd.map((s) => s.start), ...fwd.map((s, i) => x[i]! - s.start - len[i]!)]);
}

/** Pads over all axes as [begins..., ends...] (the opset 18 `axes` input selects which axes `pads` covers). */
function padSpec(ctx: InferContext): number[] {
  const r = input(ctx, 0).dims.length;
  const raw = ctx.opset >= 11 ? constInput(ctx, 1, 'pads') : (attrInts(ctx.node, 'pads') ?? []);
  const axes = ctx.opset >= 18 && ctx.node.inputs[3] ? constInput(ctx, 3, 'axes').map((a) => normAxis(ctx.node, a, r)) : range(r);
  if (raw.length !== 2 * axes.length) fail(ctx.node, `${raw.length} pads for ${axes.length} axes`);
  const pads = new Array<number>(2 * r).fill(0);
  axes.forEach((a, i) => {
    pads[a] = raw[i]!;
    pads[a + r] = raw[i + axes.length]!;
  });
  return pads;
}

/** Edge padding repeats x[0] `pb` times and x[n-1] `pe` times: those parts of dy add onto the ends. */
function edgePadGrad(b: Builder, g: string, a: number, pb: number, pe: number, n: number): string {
  if (!pb && !pe) return g;
  const parts = [emitSlice(b, g, [a], [pb], [pb + n])];
  if (pb) parts.push(padAxis(b, b.reduceSum(emitSlice(b, g, [a], [0], [pb]), [a], true), a, 0, n - 1));
  if (pe) parts.push(padAxis(b, b.reduceSum(emitSlice(b, g, [a], [pb + n], [TO_END]), [a], true), a, n - 1, 0));
  return b.sum(parts);
}

/** Reflect padding mirrors x[pb..1] before x and x[n-2..n-1-pe] after it: add those parts of dy back, reversed. */
function reflectPadGrad(b: Builder, g: string, a: number, pb: number, pe: number, n: number): string {
  if (!pb && !pe) return g;
  const parts = [emitSlice(b, g, [a], [pb], [pb + n])];
  if (pb) parts.push(padAxis(b, emitSlice(b, g, [a], [pb - 1], [-TO_END], [-1]), a, 1, n - 1 - pb));
  if (pe) parts.push(padAxis(b, emitSlice(b, g, [a], [pb + n + pe - 1], [pb + n - 1], [-1]), a, n - 1 - pe, 1));
  return b.sum(parts);
}

function rangeArgs(ctx: InferContext): { start: number; delta: number; count: number } {
  const [start, limit, delta] = (['start', 'limit', 'delta'] as const).map((what, i) => constInput(ctx, i, what)[0]!) as [number, number, number];
  if (delta === 0) fail(ctx.node, 'delta is 0');
  return { start, delta, count: Math.max(Math.ceil((limit - start) / delta), 0) };
}

const rangeValues = (ctx: InferContext): number[] => {
  const { start, delta, count } = rangeArgs(ctx);
  return range(count).map((i) => start + i * delta);
};

/** Which (row, column) entries a Trilu keeps: on or above the k-th diagonal (upper), on or below it (lower). */
function triluKeep(ctx: InferContext): (i: number, j: number) => boolean {
  const k = ctx.node.inputs[1] ? constInput(ctx, 1, 'k')[0]! : 0,
    upper = attrInt(ctx.node, 'upper', 1) !== 0;
  return (i, j) => (upper ? j - i >= k : j - i <= k);
}

interface BlockLayout {
  view: number[];
  perm: number[];
  out: number[];
}

/** DepthToSpace / SpaceToDepth: y = reshape(transpose(reshape(x, view), perm), out). */
function blockRearrange(layout: (ctx: InferContext, dims: [number, number, number, number], blocksize: number) => BlockLayout): OpDef {
  const get = (ctx: InferContext): BlockLayout => {
    const t = input(ctx, 0),
      bs = attrInt(ctx.node, 'blocksize', 0);
    if (t.dims.length !== 4 || bs < 1) fail(ctx.node, `needs a 4-D input and a blocksize (got [${t.dims}], ${bs})`);
    const l = layout(ctx, t.dims as [number, number, number, number], bs);
    if (!l.view.every(Number.isInteger)) fail(ctx.node, `[${t.dims}] does not divide into blocks of ${bs}`);
    return l;
  };
  return {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: get(ctx).out }],
    // a pure permutation of elements: dx runs the same steps backwards
    gradient: (ctx) => {
      const b = ctx.b,
        { view, perm } = get(asInfer(ctx)),
        inv = new Array<number>(perm.length);
      perm.forEach((p, i) => {
        inv[p] = i;
      });
      return [
        b.reshape(
          b.transpose(
            b.reshape(
              ctx.dOutputs[0]!,
              perm.map((p) => view[p]!),
            ),
            inv,
          ),
          ctx.inputs[0]!.type.dims,
        ),
      ];
    },
  };
}
