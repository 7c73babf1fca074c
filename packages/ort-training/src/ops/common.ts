/** Shape helpers shared by op definitions. */
import { OrtTrainingError } from '../errors.js';
import type { Node } from '../graph.js';
import { toNumbers, type HostTensor } from '../tensor.js';
import type { InferContext, TensorType } from './types.js';
import type { Builder } from '../builder.js';

export function fail(node: Node, message: string): never {
  throw new OrtTrainingError('SHAPE_INFERENCE', `${node.opType} node ${node.name}: ${message}`);
}

/** numpy-style broadcast of several shapes. */
export function broadcastDims(node: Node, shapes: number[][]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else fail(node, `cannot broadcast shapes ${shapes.map((x) => `[${x}]`).join(' and ')}`);
    }
  }
  return out;
}

export const normAxis = (node: Node, axis: number, rank: number): number => {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) fail(node, `axis ${axis} out of range for rank ${rank}`);
  return a;
};

/** The first input's type, required. */
export function input(ctx: InferContext, i: number): TensorType {
  const t = ctx.inputs[i];
  if (!t) fail(ctx.node, `input ${i} is missing or has no known type`);
  return t;
}

/** A constant input's values as numbers (shapes, axes, pads), required to be known statically. */
export function constInput(ctx: InferContext, i: number, what: string): number[] {
  const v = ctx.values[i];
  if (!v) fail(ctx.node, `${what} (input ${i}, ${ctx.node.inputs[i]}) must be a constant or computable from static shapes`);
  return toNumbers(v);
}

export const optionalConst = (ctx: InferContext, i: number): number[] | undefined => {
  const v: HostTensor | undefined = ctx.values[i];
  return ctx.node.inputs[i] && v ? toNumbers(v) : undefined;
};

export const sameDims = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Row-major strides. */
export const strides = (dims: readonly number[]): number[] => {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
};

/** Constant folding is only for small tensors (shape arithmetic), never for weights. */
export const FOLD_LIMIT = 1 << 16;

/** Swap the last two axes (a batched matrix transpose). */
export function transposeLast2(b: Builder, x: string): string {
  const r = b.dims(x).length;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return b.transpose(x, perm);
}

/**
 * A batched product p @ q; one whose result has few rows and many columns is formed as (q^T @ p^T)^T:
 * onnxruntime's CPU GEMM repacks the right operand for every block of rows, so a [32 x 1024] result over
 * K = 1024 (attention's dK^T = Q^T @ dS at 32x32 latents) ran 7x slower than the transposed product
 * [1024 x 32] plus a Transpose (341 vs 47 ms per step). The inner transposes cancel against the operands'
 * own (the builder composes transposes), and onnxruntime fuses the rest into its FusedMatMul.
 */
export function product(b: Builder, p: string, q: string): string {
  const pd = b.dims(p),
    qd = b.dims(q),
    rows = pd[pd.length - 2]!,
    cols = qd[qd.length - 1]!;
  if (rows * 4 > cols) return b.op('MatMul', [p, q]);
  return transposeLast2(b, b.op('MatMul', [transposeLast2(b, q), transposeLast2(b, p)]));
}
