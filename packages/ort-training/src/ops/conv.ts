/**
 * Conv and ConvTranspose (1-D/2-D/3-D, strides, pads, dilations, groups, auto_pad, bias). The two are each
 * other's adjoint in the input, so each one's input gradient is the other op, and both weight gradients are
 * one correlation of an input with an output gradient (`convWeightGradient`).
 */
import { attrInt, attrInts, attrString, type Node } from '../graph.js';
import type { Builder } from '../builder.js';
import { fromNumbers, numel } from '../tensor.js';
import { fail, input, product, transposeLast2 } from './common.js';
import type { GradContext, OpTable } from './types.js';

/** Everything about a convolution but its channel counts, with padding resolved to explicit numbers. */
export interface ConvGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
  group: number;
}

const span = (g: ConvGeometry, i: number) => g.dilations[i]! * (g.kernel[i]! - 1) + 1;

function baseGeometry(node: Node, xDims: number[], wDims: number[]): Omit<ConvGeometry, 'padsBegin' | 'padsEnd'> {
  const r = xDims.length - 2;
  if (r < 1 || wDims.length !== r + 2) fail(node, `input [${xDims}] and weight [${wDims}] do not describe a convolution`);
  const ones = new Array<number>(r).fill(1);
  return {
    kernel: attrInts(node, 'kernel_shape') ?? wDims.slice(2),
    strides: attrInts(node, 'strides') ?? ones,
    dilations: attrInts(node, 'dilations') ?? ones,
    group: attrInt(node, 'group', 1),
  };
}

/** Split a total padding between begin and end as auto_pad says (SAME_UPPER puts the odd one at the end). */
function splitPads(autoPad: string, total: number[]): [number[], number[]] {
  const begin = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : t - Math.floor(t / 2)));
  return [begin, total.map((t, i) => t - begin[i]!)];
}

function explicitPads(node: Node, r: number): [number[], number[]] {
  const pads = attrInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
  if (pads.some((p) => p < 0)) fail(node, `negative pads [${pads}] are not supported`);
  return [pads.slice(0, r), pads.slice(r)];
}

export function convGeometry(node: Node, xDims: number[], wDims: number[]): ConvGeometry {
  const base = baseGeometry(node, xDims, wDims),
    r = xDims.length - 2,
    inSp = xDims.slice(2);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const g = { ...base, padsBegin: new Array<number>(r).fill(0), padsEnd: new Array<number>(r).fill(0) };
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    // Output ceil(in / stride); whatever padding that takes.
    const total = inSp.map((n, i) => Math.max(0, (Math.ceil(n / g.strides[i]!) - 1) * g.strides[i]! + span(g, i) - n));
    [g.padsBegin, g.padsEnd] = splitPads(autoPad, total);
  } else if (autoPad === 'NOTSET') [g.padsBegin, g.padsEnd] = explicitPads(node, r);
  else if (autoPad !== 'VALID') fail(node, `unknown auto_pad ${autoPad}`);
  return g;
}

export function convOutSpatial(node: Node, g: ConvGeometry, inSp: number[]): number[] {
  return inSp.map((n, i) => {
    const o = Math.floor((n + g.padsBegin[i]! + g.padsEnd[i]! - span(g, i)) / g.strides[i]!) + 1;
    if (o < 1) fail(node, `kernel larger than the padded input (${n} along spatial axis ${i})`);
    return o;
  });
}

/** ConvTranspose geometry and its output size (output_shape wins over pads, as the spec says). */
export function convTransposeGeometry(node: Node, xDims: number[], wDims: number[]): { g: ConvGeometry; outSp: number[] } {
  const base = baseGeometry(node, xDims, wDims),
    r = xDims.length - 2,
    inSp = xDims.slice(2);
  const outPad = attrInts(node, 'output_padding') ?? new Array<number>(r).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const g: ConvGeometry = { ...base, padsBegin: new Array<number>(r).fill(0), padsEnd: new Array<number>(r).fill(0) };
  const full = inSp.map((n, i) => g.strides[i]! * (n - 1) + outPad[i]! + span(g, i));
  const wanted =
    attrInts(node, 'output_shape')?.slice(-r) ?? (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? inSp.map((n, i) => n * g.strides[i]!) : undefined);
  if (wanted)
    [g.padsBegin, g.padsEnd] = splitPads(
      autoPad,
      full.map((f, i) => f - wanted[i]!),
    );
  else if (autoPad === 'NOTSET') [g.padsBegin, g.padsEnd] = explicitPads(node, r);
  return { g, outSp: full.map((f, i) => f - g.padsBegin[i]! - g.padsEnd[i]!) };
}

const convAttrs = (g: ConvGeometry) => ({
  kernel_shape: g.kernel,
  strides: g.strides,
  dilations: g.dilations,
  group: g.group,
  pads: [...g.padsBegin, ...g.padsEnd],
});

/** d bias = dY summed over the batch and spatial axes. */
const biasGradient = (b: Builder, dy: string) =>
  b.reduceSum(
    dy,
    [
      0,
      ...b
        .dims(dy)
        .slice(2)
        .map((_, i) => i + 2),
    ],
    false,
  );

/** How conv weight gradients are formed; 'auto' is the measured best (see `convWeightGradient`). */
export const CONV_WEIGHT_GRADIENT_STRATEGIES = ['auto', 'patches', 'outputPatches', 'im2col', 'conv', 'gemm', 'gemmInput', 'gemmSlices'] as const;
export const convWeightGradientOptions: { strategy: (typeof CONV_WEIGHT_GRADIENT_STRATEGIES)[number] } = { strategy: 'auto' };

/**
 * dW[m, c, k] = sum over n, o of dY[n, m, o] * Xpad[n, c, o*stride + k*dilation] for the convolution
 * y = conv(x, W) with geometry `g` (W: [M, C/group, k...]). Three formulations, all exact for groups,
 * strides and dilations:
 * - patches: the input's patches (im2col columns) extracted by ONE depthwise Conv with constant one-hot
 *   kernels, then one batched MatMul with dY; a 1x1 convolution is just that MatMul.
 * - im2col: the same columns as k1*k2*.. strided Slices of a zero-padded input, concatenated.
 * - conv: a Conv over the input with batch and channels swapped and dY as the kernel (stride and dilation
 *   swap roles), cut to the kernel size.
 * - gemm (one group): the patches with the batch moved into the contraction, one Gemm
 *   (`weightGradByFoldedPatches`); gemmInput always takes the input's patches; gemmSlices cuts the columns by
 *   Slices of the batch-swapped tensor (`slicedColumns`: no transpose of them).
 */
export function convWeightGradient(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry): string {
  // Measured on onnxruntime-node 1.30 CPU, 1 thread, process CPU time per training step (the shared
  // 2-core machine was loaded, so wall times were unusable), all weights trainable:
  //   UNet fixture (16x16, C 32..80):      conv 20.5, patches 19.7 ms (min of 6; im2col within noise)
  //   bench/unet-like.ts (64x64, C 64..192): conv 467, im2col 438, patches 394 ms (min of 2)
  // Per layer (forward + weight gradient, 2 threads, conv-grad.bench.ts) the three are within noise of each
  // other at 16x16; the swapped-axes Conv runs one small GEMM per input channel, the patches form one
  // large batched GEMM, which wins as the spatial size grows. Left on the table: the extraction Conv (a
  // depthwise Conv with channel multiplier Kt) is not onnxruntime's fast depthwise path; it took about a
  // third of the weight-gradient time in profiles (64x64: 48 ms extraction vs 84 ms GEMMs per step).
  //   With the output's patches instead when it has fewer channels than the input (stride 1 only), measured
  //   at 1 thread (profiled kernel time): the 64x64 model's 192->64 channel 3x3 conv extracted 2,1728,64,64
  //   input patches in 19.7 ms, its output patches (2,576,64,64) in 2.2 ms.
  //   Toy backbone UNet (batch 16, 16x16 latents, C 64..256; 1 thread, process CPU time per graph run, medians
  //   of 6 interleaved, machine loaded): batched patches ('auto' before) 684, conv 732, gemm 611 ms (bare
  //   forward 153). At batch 16 and 4x4..16x16 maps the batched form's N partial products of the weight's
  //   size and their ReduceSum (111 of 514 ms of backward kernel time) cost more than moving the batch into
  //   the contraction; bench/unet-like.ts (batch 2, 64x64): patches 205, gemm 208 ms. So one-group convs
  //   take 'gemm' (with the output's patches where those are fewer); grouped ones the forms below.
  //   Tried and dropped (2026-12-07): one Gemm per kernel tap over strided Slices of the padded, batch-inside
  //   input (no patch matrix, no transpose of it). Toy backbone, batch 16, 2 threads, profiled on a quiet
  //   machine: all conv gradients 208 ms per step against 133 with 'gemm' (Kt Slices and Kt short-output Gemms).
  //   Kept as a knob, not the default (2026-12-07): 'gemmSlices', the same Gemm with its columns cut by Slices of
  //   the batch-swapped input (no transpose of the columns). Toy backbone, batch 16, 1 thread, kernel time per
  //   graph run, three back-to-back pairs on a quiet machine: 483.2 -> 475.7 ms (-1.5%: extraction Convs -23,
  //   Transposes -10, but Slices +17, Concat +5, Pad +5 ms; 273 more nodes). At 2 threads the bench's run-to-run
  //   spread (410-535 ms per step for the same graph) hides a difference that size.
  const want = convWeightGradientOptions.strategy;
  const fewerOutputs = outputPatchesApply(g) && b.dims(dy)[1]! < b.dims(x)[1]! && numel(g.kernel) > 1;
  if ((want === 'gemm' || want === 'gemmInput' || want === 'gemmSlices' || want === 'auto') && g.group === 1)
    return weightGradByFoldedPatches(b, x, dy, wDims, g, want !== 'gemmInput' && fewerOutputs, want === 'gemmSlices');
  const outputPatches = outputPatchesApply(g) && (want === 'outputPatches' || (want === 'auto' && fewerOutputs));
  if (outputPatches) return weightGradByOutputPatches(b, x, dy, wDims, g);
  if (want === 'conv') return weightGradByConv(b, x, dy, wDims, g);
  if (want === 'im2col') return weightGradByIm2col(b, x, dy, wDims, g);
  return weightGradByPatches(b, x, dy, wDims, g); // 'patches', 'auto', and 'outputPatches' where it does not apply
}

/**
 * Columns cols[n, c, k, o] = Xpad[n, c, o*stride + k*dilation] come from a depthwise Conv of x with Kt
 * one-hot kernels per channel (tap k of kernel k is 1), using the forward's own pads, strides and
 * dilations: a data movement in onnxruntime's Conv kernel, with a constant weight. Then per group
 * dW[g] = sum_n dY[n, g] @ cols[n, g]^T, one batched MatMul (transposed operand fused) and a ReduceSum over
 * the (small) batch axis. The columns are Kt times the input's size, transient.
 */
function weightGradByPatches(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry): string {
  const xd = b.dims(x),
    yd = b.dims(dy),
    dtype = b.type(x).dtype;
  const [N, C] = xd as [number, number],
    M = yd[1]!,
    G = g.group;
  const P = numel(yd.slice(2)),
    Kt = numel(g.kernel);
  let cols: string;
  if (Kt === 1 && g.strides.every((s) => s === 1) && [...g.padsBegin, ...g.padsEnd].every((p) => p === 0)) {
    cols = x; // a 1x1 convolution reads the input as it is
  } else {
    // Depthwise: channel c's Kt output channels are its taps, already in W's (c, k) order. The constant is
    // C*Kt*Kt values (Kt/M of the weight's size).
    const taps = b.sharedConstant(
      `conv_taps:${dtype}:${C}:${g.kernel}`,
      () => {
        const onehot = new Array<number>(C * Kt * Kt).fill(0);
        for (let c = 0; c < C; c++) for (let k = 0; k < Kt; k++) onehot[(c * Kt + k) * Kt + k] = 1;
        return fromNumbers(dtype, [C * Kt, 1, ...g.kernel], onehot);
      },
      'conv_taps',
    );
    cols = b.op('Conv', [x, taps], { ...convAttrs({ ...g, group: C }) }, 'patches');
  }
  // cols [N, (G,) Cg*Kt, P] in W's own (c, k) order; dW[g] = sum_n dY[n, g] @ cols[n, g]^T.
  const grp = G === 1 ? [] : [G];
  const colsT = transposeLast2(b, b.reshape(cols, [N, ...grp, (C / G) * Kt, P]));
  const dW = b.reduceSum(product(b, b.reshape(dy, [N, ...grp, M / G, P]), colsT), [0], false);
  return b.reshape(dW, wDims);
}

/** The input's patches (as weightGradByPatches extracts them) as one matrix [C*Kt, N*P]: the patch extraction itself. */
function patchColumns(b: Builder, x: string, g: ConvGeometry): string {
  const xd = b.dims(x),
    dtype = b.type(x).dtype,
    C = xd[1]!,
    Kt = numel(g.kernel);
  if (Kt === 1 && g.strides.every((s) => s === 1) && [...g.padsBegin, ...g.padsEnd].every((p) => p === 0)) return x;
  const taps = b.sharedConstant(
    `conv_taps:${dtype}:${C}:${g.kernel}`,
    () => {
      const onehot = new Array<number>(C * Kt * Kt).fill(0);
      for (let c = 0; c < C; c++) for (let k = 0; k < Kt; k++) onehot[(c * Kt + k) * Kt + k] = 1;
      return fromNumbers(dtype, [C * Kt, 1, ...g.kernel], onehot);
    },
    'conv_taps',
  );
  return b.op('Conv', [x, taps], { ...convAttrs({ ...g, group: C }) }, 'patches');
}

/**
 * Patches with the batch folded into the contraction (one group only): dW[M, C*Kt] = dY'[M, N*P] @
 * cols'[C*Kt, N*P]^T, one Gemm, where ' moves the batch axis inside (a Transpose of the columns and of dY).
 * The batched form writes N partial products of the weight's size and sums them; at batch 16 and 8x8 or
 * 16x16 maps that sum and the short (P-long) contractions cost more than the transposes. `sliced`: the columns
 * from `slicedColumns` instead ('gemmSlices').
 */
function weightGradByFoldedPatches(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry, fromOutput: boolean, sliced: boolean): string {
  const N = b.dims(x)[0]!,
    C = b.dims(x)[1]!,
    M = b.dims(dy)[1]!,
    Kt = numel(g.kernel);
  const batchInside = (t: string, rows: number, cols: number) => b.reshape(b.transpose(b.reshape(t, [N, rows, cols]), [1, 0, 2]), [rows, N * cols]);
  if (!fromOutput) {
    const outSp = b.dims(dy).slice(2),
      P = numel(outSp);
    const cols = sliced ? slicedColumns(b, x, g, outSp, false) : batchInside(patchColumns(b, x, g), C * Kt, P);
    return b.reshape(b.op('Gemm', [batchInside(dy, M, P), cols], { transB: 1 }), wDims);
  }
  // the output gradient's patches (weightGradByOutputPatches): dW^T[(m, k), c], then W's (c, k) order
  const inSp = b.dims(x).slice(2),
    Q = numel(inSp);
  const cols = sliced ? slicedColumns(b, dy, g, inSp, true) : batchInside(outputPatchColumns(b, dy, g), M * Kt, Q);
  const dWt = b.op('Gemm', [cols, batchInside(x, C, Q)], { transB: 1 });
  return b.reshape(b.transpose(b.reshape(dWt, [M, Kt, C]), [0, 2, 1]), wDims);
}

/**
 * What kernel tap k (row-major over the kernel axes) reads of a zero-padded tensor whose spatial axes start at
 * `firstAxis`: t[..., off + stride * o] for the outSp output positions o, off = tap * dilation (`flip`: the tap
 * mirrored, (K - 1 - tap) * dilation). The tensor itself where the tap reads all of it.
 */
function tapSlice(b: Builder, t: string, firstAxis: number, g: ConvGeometry, k: number, outSp: number[], strides: number[], flip: boolean): string {
  const td = b.dims(t);
  const off = g.kernel.map((K, i) => {
    const tap = Math.floor(k / numel(g.kernel.slice(i + 1))) % K;
    return (flip ? K - 1 - tap : tap) * g.dilations[i]!;
  });
  if (off.every((o, i) => o === 0 && strides[i] === 1 && outSp[i] === td[firstAxis + i])) return t;
  const ends = off.map((o, i) => o + strides[i]! * (outSp[i]! - 1) + 1);
  return b.op('Slice', [t, b.int64s(off), b.int64s(ends), b.int64s(off.map((_, i) => firstAxis + i)), b.int64s(strides)]);
}

/**
 * The folded form's columns cut straight in the Gemm's layout: the tensor's batch and channel axes swapped first
 * ([C, N, ...], the input's size), zero-padded, then one strided Slice per kernel tap, concatenated on a new tap
 * axis: [C, Kt, N, ...] = [C*Kt, N*P] with no transpose of the Kt times larger columns. `flip`: the output
 * gradient's patches (tap k reads offset (K - 1 - k) * dilation of dY padded by span - 1 - pad; unit strides).
 */
function slicedColumns(b: Builder, t: string, g: ConvGeometry, outSp: number[], flip: boolean): string {
  const d = b.dims(t),
    r = d.length - 2,
    C = d[1]!,
    N = d[0]!,
    Kt = numel(g.kernel);
  const swapped = b.transpose(t, [1, 0, ...Array.from({ length: r }, (_, i) => i + 2)]);
  const pb = flip ? g.padsBegin.map((p, i) => span(g, i) - 1 - p) : g.padsBegin,
    pe = flip ? g.padsEnd.map((p, i) => span(g, i) - 1 - p) : g.padsEnd;
  const padded = [...pb, ...pe].some((p) => p !== 0) ? b.op('Pad', [swapped, b.int64s([0, 0, ...pb, 0, 0, ...pe], 'pads')], { mode: 'constant' }) : swapped;
  const pd = b.dims(padded);
  const five = b.reshape(padded, [C, 1, N, ...pd.slice(2)]);
  const strides = flip ? g.kernel.map(() => 1) : g.strides;
  const cols = Array.from({ length: Kt }, (_, k) => tapSlice(b, five, 3, g, k, outSp, strides, flip));
  return b.reshape(Kt === 1 ? cols[0]! : b.op('Concat', cols, { axis: 1 }, 'patches'), [C * Kt, N * numel(outSp)]);
}

/** The output gradient's patches cols[n, m, k, q] = dY[n, m, q + padBegin - k*dilation] (zero outside), [N, M*Kt, Q]. */
function outputPatchColumns(b: Builder, dy: string, g: ConvGeometry): string {
  const M = b.dims(dy)[1]!,
    dtype = b.type(dy).dtype,
    Kt = numel(g.kernel);
  const taps = b.sharedConstant(
    `conv_taps_flipped:${dtype}:${M}:${g.kernel}`,
    () => {
      const onehot = new Array<number>(M * Kt * Kt).fill(0);
      for (let m = 0; m < M; m++) for (let k = 0; k < Kt; k++) onehot[(m * Kt + k) * Kt + (Kt - 1 - k)] = 1;
      return fromNumbers(dtype, [M * Kt, 1, ...g.kernel], onehot);
    },
    'conv_taps',
  );
  return b.op(
    'Conv',
    [dy, taps],
    {
      kernel_shape: g.kernel,
      dilations: g.dilations,
      group: M,
      pads: [...g.padsBegin.map((p, i) => span(g, i) - 1 - p), ...g.padsEnd.map((p, i) => span(g, i) - 1 - p)],
    },
    'patches',
  );
}

/** The output-patch form needs unit strides and pads no wider than the dilated kernel (the common "same" convs). */
const outputPatchesApply = (g: ConvGeometry): boolean =>
  g.strides.every((st) => st === 1) && g.kernel.every((_, i) => g.padsBegin[i]! <= span(g, i) - 1 && g.padsEnd[i]! <= span(g, i) - 1);

/**
 * The same correlation read from the other side (unit strides): with q an input position,
 * dW[m, c, k] = sum over n, q of X[n, c, q] * dY[n, m, q + padBegin - k*dilation] (dY zero outside), so the
 * columns are the OUTPUT gradient's patches, cols[n, m, k, q], from a depthwise Conv of dY with the one-hot
 * taps flipped and the input gradient's pads (span - 1 - pad): M*Kt*Q values instead of C*Kt*P, less work
 * when the convolution reduces channels (decoder convs after a skip concatenation, conv_out). Then per group
 * dW[g] = sum_n cols[n, g] @ X[n, g]^T as [Mg*Kt, Cg], and a (weight-sized) transpose to W's (c, k) order.
 */
function weightGradByOutputPatches(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry): string {
  const xd = b.dims(x),
    yd = b.dims(dy);
  const [N, C] = xd as [number, number],
    M = yd[1]!,
    G = g.group;
  const Q = numel(xd.slice(2)),
    Kt = numel(g.kernel);
  const cols = outputPatchColumns(b, dy, g);
  const grp = G === 1 ? [] : [G];
  const dWt = b.reduceSum(product(b, b.reshape(cols, [N, ...grp, (M / G) * Kt, Q]), transposeLast2(b, b.reshape(x, [N, ...grp, C / G, Q]))), [0], false);
  const byTap = b.reshape(dWt, [...grp, M / G, Kt, C / G]);
  return b.reshape(b.transpose(byTap, G === 1 ? [0, 2, 1] : [0, 1, 3, 2]), wDims);
}

function weightGradByIm2col(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry): string {
  const xd = b.dims(x),
    yd = b.dims(dy),
    dtype = b.type(x).dtype;
  const [N, C] = xd as [number, number],
    M = yd[1]!,
    G = g.group,
    r = xd.length - 2;
  const outSp = yd.slice(2),
    P = numel(outSp),
    Kt = numel(g.kernel);
  // Zero padding as a Concat with zero blocks (only on axes that have any).
  let xp = x;
  for (let i = 0; i < r; i++) {
    const pb = g.padsBegin[i]!,
      pe = g.padsEnd[i]!;
    if (pb === 0 && pe === 0) continue;
    const cur = b.dims(xp),
      block = (n: number) => b.zeros({ dtype, dims: cur.map((d, a) => (a === i + 2 ? n : d)) });
    xp = b.op('Concat', [...(pb ? [block(pb)] : []), xp, ...(pe ? [block(pe)] : [])], { axis: i + 2 });
  }
  const cols: string[] = [];
  for (let k = 0; k < Kt; k++) {
    const slice = tapSlice(b, xp, 2, g, k, outSp, g.strides, false);
    cols.push(Kt === 1 ? slice : b.unsqueeze(slice, [2]));
  }
  // cols[n, g, (c, k), p] in W's own (c, k) order; dW[g]^T = sum_n cols[n, g] @ dY[n, g]^T (transposing
  // dY rather than the Kt times larger columns).
  const col = b.reshape(Kt === 1 ? cols[0]! : b.op('Concat', cols, { axis: 2 }), [N, G, (C / G) * Kt, P]);
  const dyT = b.transpose(b.reshape(dy, [N, G, M / G, P]), [0, 1, 3, 2]);
  const dWT = b.reduceSum(b.op('MatMul', [col, dyT]), [0], false);
  return b.reshape(b.transpose(dWT, [0, 2, 1]), wDims);
}

function weightGradByConv(b: Builder, x: string, dy: string, wDims: number[], g: ConvGeometry): string {
  const xd = b.dims(x),
    yd = b.dims(dy);
  const [N, C] = xd as [number, number],
    M = yd[1]!,
    G = g.group,
    Cg = C / G,
    r = xd.length - 2;
  const sp = (d: number[]) => d.slice(2),
    rest = Array.from({ length: r }, (_, i) => i + 3);
  // Input as a batch of Cg images with G*N channels (group-major), dY as M kernels over N channels; with
  // one group both are a plain swap of the first two axes.
  const swap = (t: string, d: number[], k: number, perm: number[], to: number[]) =>
    G === 1 ? b.transpose(t, [1, 0, ...rest.map((a) => a - 1)]) : b.reshape(b.transpose(b.reshape(t, [d[0]!, G, k, ...sp(d)]), perm), to);
  const xs = swap(x, xd, Cg, [2, 1, 0, ...rest], [Cg, G * N, ...sp(xd)]);
  const ks = swap(dy, yd, M / G, [1, 2, 0, ...rest], [M, N, ...sp(yd)]);
  const corr = b.op('Conv', [xs, ks], {
    kernel_shape: sp(yd),
    strides: g.dilations,
    dilations: g.strides,
    group: G,
    pads: [...g.padsBegin, ...g.padsEnd],
  });
  // The correlation can run past the kernel (by less than one stride): keep the first k taps.
  const cd = b.dims(corr);
  const cut = cd.slice(2).some((d, i) => d !== g.kernel[i])
    ? b.op('Slice', [corr, b.int64s(g.kernel.map(() => 0)), b.int64s(g.kernel), b.int64s(g.kernel.map((_, i) => i + 2))])
    : corr;
  return b.transpose(cut, [1, 0, ...rest.map((a) => a - 1)]);
}

/** How conv input gradients are formed (measurement knob; see `convInputGradient`). */
export const convInputGradientOptions: { strategy: 'conv' | 'convtranspose' } = { strategy: 'conv' };

/**
 * The adjoint of conv in x. With unit strides it is a plain Conv of dY with the spatially flipped,
 * channel-transposed kernel (onnxruntime's Conv is much faster than its ConvTranspose); otherwise a
 * ConvTranspose whose output_padding restores the input rows the forward's floor dropped.
 */
function convInputGradient(b: Builder, dy: string, w: string, xDims: number[], g: ConvGeometry): string {
  const ySp = b.dims(dy).slice(2);
  const padsBegin = g.padsBegin.map((p, i) => span(g, i) - 1 - p),
    padsEnd = g.padsEnd.map((p, i) => span(g, i) - 1 - p);
  const how = convInputGradientOptions.strategy;
  if (how !== 'convtranspose' && g.strides.every((s) => s === 1) && [...padsBegin, ...padsEnd].every((p) => p >= 0)) {
    const wd = b.dims(w),
      G = g.group,
      Mg = wd[0]! / G,
      Cg = wd[1]!,
      k = wd.slice(2),
      Kt = numel(k);
    // Per group, input and output channels swap, [G*Mg, Cg, k] -> [G*Cg, Mg, k], and the kernel flips
    // spatially, which reverses its flattened taps: a MatMul with the Kt x Kt reversal matrix. For a
    // trainable 3x3 weight that measured 4x faster than a negative-step Slice or a Gather (onnxruntime
    // 1.30, [72, 32, 3, 3]: ~20 vs ~95 us); for a frozen weight onnxruntime folds it all into a constant.
    const grp = G === 1 ? [] : [G];
    const swapped = b.transpose(b.reshape(w, [...grp, Mg, Cg, Kt]), G === 1 ? [1, 0, 2] : [0, 2, 1, 3]);
    const reversal = new Array<number>(Kt * Kt).fill(0);
    for (let i = 0; i < Kt; i++) reversal[i * Kt + Kt - 1 - i] = 1;
    const flipped = Kt === 1 ? swapped : b.op('MatMul', [swapped, b.constFloat(b.type(w).dtype, [Kt, Kt], reversal, 'flip')]);
    const wt = b.reshape(flipped, [G * Cg, Mg, ...k]);
    return b.op('Conv', [dy, wt], { kernel_shape: k, dilations: g.dilations, group: G, pads: [...padsBegin, ...padsEnd] });
  }
  const outputPadding = xDims.slice(2).map((n, i) => n - (g.strides[i]! * (ySp[i]! - 1) + span(g, i) - g.padsBegin[i]! - g.padsEnd[i]!));
  return b.op('ConvTranspose', [dy, w], { ...convAttrs(g), output_padding: outputPadding });
}

function convGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  const X = ctx.inputs[0]!,
    W = ctx.inputs[1]!,
    dy = ctx.dOutputs[0]!;
  const g = convGeometry(node, X.type.dims, W.type.dims);
  let dX: string | undefined;
  if (needs[0]) dX = convInputGradient(b, dy, W.name, X.type.dims, g);
  const dW = needs[1] ? convWeightGradient(b, X.name, dy, W.type.dims, g) : undefined;
  return [dX, dW, needs[2] ? biasGradient(b, dy) : undefined];
}

function convTransposeGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node, needs } = ctx;
  const X = ctx.inputs[0]!,
    W = ctx.inputs[1]!,
    dy = ctx.dOutputs[0]!;
  const { g } = convTransposeGeometry(node, X.type.dims, W.type.dims);
  // y = convT(x, W) is the adjoint of x -> conv(., W): dX = conv(dY, W), and dW correlates dY (as the
  // conv's input) with X (as its output gradient).
  const dX = needs[0] ? b.op('Conv', [dy, W.name], convAttrs(g)) : undefined;
  const dW = needs[1] ? convWeightGradient(b, dy, X.name, W.type.dims, g) : undefined;
  return [dX, dW, needs[2] ? biasGradient(b, dy) : undefined];
}

export const convOps: OpTable = {
  Conv: {
    infer: (ctx) => {
      const x = input(ctx, 0),
        w = input(ctx, 1);
      const g = convGeometry(ctx.node, x.dims, w.dims);
      if (x.dims[1] !== w.dims[1]! * g.group)
        fail(ctx.node, `input has ${x.dims[1]} channels, weight [${w.dims}] with group ${g.group} expects ${w.dims[1]! * g.group}`);
      return [{ dtype: x.dtype, dims: [x.dims[0]!, w.dims[0]!, ...convOutSpatial(ctx.node, g, x.dims.slice(2))] }];
    },
    gradient: convGradient,
  },
  ConvTranspose: {
    infer: (ctx) => {
      const x = input(ctx, 0),
        w = input(ctx, 1);
      const { g, outSp } = convTransposeGeometry(ctx.node, x.dims, w.dims);
      if (x.dims[1] !== w.dims[0]) fail(ctx.node, `input has ${x.dims[1]} channels, weight [${w.dims}] expects ${w.dims[0]}`);
      return [{ dtype: x.dtype, dims: [x.dims[0]!, w.dims[1]! * g.group, ...outSp] }];
    },
    gradient: convTransposeGradient,
  },
};
