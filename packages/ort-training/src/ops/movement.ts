/** Helpers shared by the data-movement ops (shape.ts, indexing.ts, resize.ts): host gathers and emitters. */
import type { Builder } from '../builder.js';
import { OrtTrainingError } from '../errors.js';
import type { Node } from '../graph.js';
import { fromNumbers, numel, toNumbers, type HostTensor } from '../tensor.js';
import { strides } from './common.js';
import type { GradContext, InferContext } from './types.js';

/** Gather elements of `x` (row-major) at the output index computed by `map` (for folding movement ops). */
export function gatherEval(x: HostTensor, outDims: number[], map: (outIndex: number[]) => number): HostTensor {
  const vals = toNumbers(x),
    n = numel(outDims),
    s = strides(outDims);
  const out = new Array<number>(n),
    idx = new Array<number>(outDims.length);
  for (let k = 0; k < n; k++) {
    let r = k;
    for (let i = 0; i < outDims.length; i++) {
      idx[i] = Math.floor(r / s[i]!);
      r %= s[i]!;
    }
    out[k] = vals[map(idx)]!;
  }
  return fromNumbers(x.dtype, outDims, out);
}

/** The infer view of a gradient context, to re-read a node's static arguments (axes, pads, sizes). */
export const asInfer = (ctx: GradContext): InferContext => ({
  node: ctx.node,
  opset: ctx.opset,
  inputs: ctx.inputs.map((t) => t?.type),
  values: ctx.inputs.map((t) => t?.value),
});

/** Far enough past either end of any axis to slice through it (ONNX clamps). */
export const TO_END = Number.MAX_SAFE_INTEGER;

/** Slice `x` on `axes` (opset 10+ input form); no-op when nothing is cut. */
export function emitSlice(b: Builder, x: string, axes: number[], starts: number[], ends: number[], steps?: number[]): string {
  if (axes.length === 0) return x;
  const inputs = [x, b.int64s(starts, 'starts'), b.int64s(ends, 'ends'), b.int64s(axes, 'axes')];
  if (steps && steps.some((s) => s !== 1)) inputs.push(b.int64s(steps, 'steps'));
  return b.op('Slice', inputs);
}

/** Zero padding by per-axis [begins..., ends...] (negative values crop); no-op for all zeros. */
export function emitPad(b: Builder, x: string, pads: number[]): string {
  if (pads.every((p) => p === 0)) return x;
  return b.op('Pad', [x, b.int64s(pads, 'pads')], { mode: 'constant' });
}

/** Static input values as a number list, when known. */
export const knownValues = (t: { value?: HostTensor } | undefined): number[] | undefined => (t?.value ? toNumbers(t.value) : undefined);

/** A form of a differentiable op whose gradient is not implemented: fail loudly, never a silent zero. */
export function noGradient(node: Node, why: string): never {
  throw new OrtTrainingError('NO_GRADIENT', `${node.opType} node ${node.name}: no gradient for ${why}`);
}

/** Zero-pad `x` along one axis of a rank-`r` tensor. */
export function padAxis(b: Builder, x: string, axis: number, begin: number, end: number): string {
  const r = b.dims(x).length,
    pads = new Array<number>(2 * r).fill(0);
  pads[axis] = begin;
  pads[axis + r] = end;
  return emitPad(b, x, pads);
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
