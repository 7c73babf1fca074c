/**
 * Resize (UNet upsampling, VAE decoders). Every supported mode is separable and linear in X: along each
 * axis y = A x for an interpolation matrix A[out, in] fixed by the static shapes, so dx = A^T dy axis by
 * axis. Integer-factor nearest upsampling (each input repeated f times) is a Reshape + ReduceSum instead.
 */
import type { Builder } from '../builder.js';
import { attrFloat, attrInt, attrInts, attrString } from '../graph.js';
import { fromNumbers } from '../tensor.js';
import { fail, input, normAxis, optionalConst } from './common.js';
import { asInfer, noGradient, range } from './movement.js';
import type { InferContext, OpTable } from './types.js';

interface ResizeSpec {
  out: number[];
  scales: number[];
}

/** Output dims and the per-axis scale the coordinate transform uses (given scales, or out/in for sizes). */
function resizeSpec(ctx: InferContext): ResizeSpec {
  const x = input(ctx, 0).dims,
    r = x.length;
  const axes = (ctx.opset >= 18 ? attrInts(ctx.node, 'axes') : undefined)?.map((a) => normAxis(ctx.node, a, r)) ?? range(r);
  const nonEmpty = (v: number[] | undefined) => (v && v.length ? v : undefined);
  const scalesIn = nonEmpty(optionalConst(ctx, ctx.opset >= 11 ? 2 : 1));
  const sizesIn = ctx.opset >= 11 ? nonEmpty(optionalConst(ctx, 3)) : undefined;
  const out = [...x],
    scales = x.map(() => 1);
  if (sizesIn) {
    if (sizesIn.length !== axes.length) fail(ctx.node, `${sizesIn.length} sizes for ${axes.length} axes`);
    const policy = attrString(ctx.node, 'keep_aspect_ratio_policy', 'stretch');
    const ratios = axes.map((a, i) => sizesIn[i]! / x[a]!);
    const common = policy === 'not_larger' ? Math.min(...ratios) : policy === 'not_smaller' ? Math.max(...ratios) : undefined;
    axes.forEach((a, i) => {
      scales[a] = common ?? ratios[i]!;
      out[a] = common === undefined ? sizesIn[i]! : Math.round(common * x[a]!);
    });
  } else if (scalesIn) {
    if (scalesIn.length !== axes.length) fail(ctx.node, `${scalesIn.length} scales for ${axes.length} axes`);
    axes.forEach((a, i) => {
      scales[a] = scalesIn[i]!;
      out[a] = Math.floor(x[a]! * scalesIn[i]!);
    });
  } else {
    fail(ctx.node, 'needs constant scales or sizes');
  }
  return { out, scales };
}

/** Source coordinate of output index j (ONNX coordinate_transformation_mode). */
function sourceCoordinate(mode: string, j: number, n: number, m: number, s: number): number {
  switch (mode) {
    case 'half_pixel':
      return (j + 0.5) / s - 0.5;
    case 'pytorch_half_pixel':
      return m > 1 ? (j + 0.5) / s - 0.5 : 0;
    case 'align_corners':
      return m === 1 ? 0 : (j * (n - 1)) / (m - 1);
    case 'asymmetric':
      return j / s;
    case 'tf_half_pixel_for_nn':
      return (j + 0.5) / s;
    case 'half_pixel_symmetric':
      return (n / 2) * (1 - m / (s * n)) + (j + 0.5) / s - 0.5;
    default:
      throw new Error(`coordinate_transformation_mode ${mode}`);
  }
}

function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case 'round_prefer_floor':
      return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil':
      return Math.round(x);
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    default:
      throw new Error(`nearest_mode ${mode}`);
  }
}

/** Keys' cubic convolution weights of the 4 neighbours floor(x)-1 .. floor(x)+2 at fraction t. */
function cubicWeights(t: number, a: number): number[] {
  const near = (d: number) => ((a + 2) * d - (a + 3)) * d * d + 1; // |d| <= 1
  const far = (d: number) => ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; // 1 < |d| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** The interpolation matrix A[m, n] of one axis (row-major), y = A x. */
function interpolationMatrix(ctx: InferContext, n: number, m: number, s: number): number[] {
  const node = ctx.node,
    mode = attrString(node, 'mode', 'nearest');
  const ct = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  if (ct === 'tf_crop_and_resize') noGradient(node, 'coordinate_transformation_mode tf_crop_and_resize');
  if (attrInt(node, 'antialias', 0) && s < 1 && mode !== 'nearest') noGradient(node, 'antialiased downsampling');
  const A = new Array<number>(m * n).fill(0),
    clamp = (i: number) => Math.min(Math.max(i, 0), n - 1);
  for (let j = 0; j < m; j++) {
    const x = sourceCoordinate(ct, j, n, m, s);
    if (mode === 'nearest') {
      A[j * n + clamp(nearestIndex(attrString(node, 'nearest_mode', 'round_prefer_floor'), x))] = 1;
    } else if (mode === 'linear') {
      const c = Math.min(Math.max(x, 0), n - 1),
        i0 = Math.floor(c),
        i1 = Math.min(i0 + 1, n - 1),
        t = c - i0;
      A[j * n + i0]! += 1 - t;
      A[j * n + i1]! += t;
    } else if (mode === 'cubic') {
      const i0 = Math.floor(x),
        w = cubicWeights(x - i0, attrFloat(node, 'cubic_coeff_a', -0.75));
      const inside = w.map((_, k) => i0 - 1 + k >= 0 && i0 - 1 + k < n);
      // exclude_outside drops out-of-range neighbours and renormalises; otherwise they read the edge value
      const total = attrInt(node, 'exclude_outside', 0) ? w.reduce((acc, v, k) => acc + (inside[k] ? v : 0), 0) : 1;
      w.forEach((v, k) => {
        if (attrInt(node, 'exclude_outside', 0) && !inside[k]) return;
        A[j * n + clamp(i0 - 1 + k)]! += v / total;
      });
    } else {
      noGradient(node, `mode ${mode}`);
    }
  }
  return A;
}

/** The repeat factor f when A repeats each input f times in order (y[j] = x[floor(j / f)]; 1 is identity), else 0. */
function repeatFactor(A: number[], n: number, m: number): number {
  if (m % n !== 0) return 0;
  const f = m / n;
  for (let j = 0; j < m; j++) if (A[j * n + Math.floor(j / f)] !== 1) return 0;
  return f;
}

function resizeGrad(b: Builder, ctx: InferContext, dy: string, xDims: number[]): string {
  const { out, scales } = resizeSpec(ctx),
    dtype = b.type(dy).dtype;
  // an untouched axis (batch, channels) maps j to j in every mode but tf_half_pixel_for_nn: skip its matrix
  const ct = attrString(ctx.node, 'coordinate_transformation_mode', 'half_pixel');
  const untouched = (a: number) => out[a] === xDims[a] && scales[a] === 1 && ct !== 'tf_half_pixel_for_nn';
  const mats = xDims.map((n, a) => (untouched(a) ? [] : interpolationMatrix(ctx, n, out[a]!, scales[a]!)));
  const factors = xDims.map((n, a) => (untouched(a) ? 1 : repeatFactor(mats[a]!, n, out[a]!)));
  // nearest repeats: view dy as [.., n, f, ..] and sum over the f axes
  let g = dy,
    cur = [...out];
  if (factors.some((f) => f > 1)) {
    const view: number[] = [],
      sumAxes: number[] = [];
    cur.forEach((m, a) => {
      const f = factors[a]!;
      if (f > 1) {
        view.push(m / f);
        sumAxes.push(view.length);
        view.push(f);
      } else view.push(m);
    });
    g = b.reduceSum(b.reshape(g, view), sumAxes, false);
    cur = cur.map((m, a) => (factors[a]! > 1 ? m / factors[a]! : m));
  }
  // other axes: dx = A^T dy along the axis, as one MatMul over a [pre, m, post] view
  for (let a = xDims.length - 1; a >= 0; a--) {
    const n = xDims[a]!,
      m = cur[a]!,
      A = mats[a]!;
    if (factors[a]! > 0) continue; // repeated (done above) or identity
    const pre = cur.slice(0, a).reduce((p, d) => p * d, 1),
      post = cur.slice(a + 1).reduce((p, d) => p * d, 1);
    if (post === 1) {
      g = b.op('MatMul', [b.reshape(g, [pre, m]), b.constant(fromNumbers(dtype, [m, n], A), 'resize_matrix')]);
    } else {
      const At = range(n * m).map((k) => A[(k % m) * n + Math.floor(k / m)]!);
      g = b.op('MatMul', [b.constant(fromNumbers(dtype, [n, m], At), 'resize_matrix_t'), b.reshape(g, [pre, m, post])]);
    }
    cur[a] = n;
    g = b.reshape(g, cur);
  }
  return b.reshape(g, xDims);
}

export const resizeOps: OpTable = {
  Resize: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: resizeSpec(ctx).out }],
    gradient: (ctx) => [resizeGrad(ctx.b, asInfer(ctx), ctx.dOutputs[0]!, ctx.inputs[0]!.type.dims), undefined, undefined, undefined],
  },
};
