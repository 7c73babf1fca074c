/** Shape helpers shared by op definitions. */
import { OrtTrainingError } from '../errors.js';
import type { Node } from '../graph.js';
import { toNumbers, type HostTensor } from '../tensor.js';
import type { InferContext, TensorType } from './types.js';

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
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]!; }
  return s;
};

/** Constant folding is only for small tensors (shape arithmetic), never for weights. */
export const FOLD_LIMIT = 1 << 16;
