/** Matrix products (MatMul, Gemm, Einsum); convolutions live in conv.ts and are part of this table. */
import { attrFloat, attrInt } from '../graph.js';
import type { Builder } from '../builder.js';
import { numel } from '../tensor.js';
import { fail, input, product, transposeLast2 } from './common.js';
import { convOps } from './conv.js';
import { einsumOps } from './einsum.js';
import type { GradContext, OpTable } from './types.js';

export { transposeLast2 };

/** numpy matmul shape rule. */
export function matmulDims(node: Parameters<typeof fail>[0], a: number[], b: number[]): number[] {
  const A = a.length === 1 ? [1, a[0]!] : a,
    B = b.length === 1 ? [b[0]!, 1] : b;
  const k = A[A.length - 1]!,
    k2 = B[B.length - 2]!;
  if (k !== k2) fail(node, `inner dimensions differ: [${a}] x [${b}]`);
  const batchA = A.slice(0, -2),
    batchB = B.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = batchA[i - rank + batchA.length] ?? 1,
      y = batchB[i - rank + batchB.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(node, `batch dimensions do not broadcast: [${a}] x [${b}]`);
    batch.push(Math.max(x, y));
  }
  const out = [...batch, A[A.length - 2]!, B[B.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

/** A 2-D product op(a) @ op(b) as one Gemm (onnxruntime reads transposed operands without copying them). */
export function gemm(b: Builder, a: string, bm: string, transA: boolean, transB: boolean, alpha = 1): string {
  return b.op('Gemm', [a, bm], { transA: transA ? 1 : 0, transB: transB ? 1 : 0, alpha: alpha === 1 ? undefined : { float: alpha } });
}

/**
 * Y = A @ B with numpy semantics. 1-D operands are promoted to matrices ([K] -> [1,K] on the left, [K,1] on
 * the right) so everything below is a matrix product. dA = dY @ B^T, dB = A^T @ dY, each summed over the
 * batch dimensions its operand was broadcast along.
 */
function matmulGradient(ctx: GradContext): (string | undefined)[] {
  const { b, needs } = ctx;
  const A = ctx.inputs[0]!,
    B = ctx.inputs[1]!;
  const aDims = A.type.dims,
    bDims = B.type.dims;
  const a2 = aDims.length === 1 ? [1, aDims[0]!] : aDims,
    b2 = bDims.length === 1 ? [bDims[0]!, 1] : bDims;
  const y2 = matmulDims(ctx.node, a2, b2);
  const a = b.reshape(A.name, a2),
    w = b.reshape(B.name, b2),
    dy = b.reshape(ctx.dOutputs[0]!, y2);
  const K = a2[a2.length - 1]!,
    N = b2[b2.length - 1]!;
  let dA: string | undefined, dB: string | undefined;
  if (b2.length === 2) {
    // Activations [..., M, K] x weight [K, N]: fold every leading axis into rows, so that
    // dW = A2^T @ dY2 is ONE 2-D product and dA = dY2 @ W^T another.
    const rows = numel(a2) / K;
    // dA = dY2 @ W^T as a Gemm with transB: W is read where it is. (A MatMul with Transpose(W) made
    // onnxruntime fold a transposed copy of every frozen weight: SD 2.1's 4.8 GB of weights held twice.)
    if (needs[0]) dA = b.reshape(gemm(b, b.reshape(dy, [rows, N]), w, false, true), a2);
    if (needs[1]) dB = gemm(b, b.reshape(a, [rows, K]), b.reshape(dy, [rows, N]), true, false);
  } else {
    // Batched (attention [B,H,S,D] x [B,H,D,S]) or a matrix times a batch: batched products with the last
    // two axes transposed, reduced over the batch axes this operand was broadcast along.
    if (needs[0]) dA = b.sumToShape(product(b, dy, transposeLast2(b, w)), a2);
    if (needs[1]) dB = b.sumToShape(product(b, transposeLast2(b, a), dy), b2);
  }
  return [dA && b.reshape(dA, aDims), dB && b.reshape(dB, bDims)];
}

/** Y = alpha * op(A) @ op(B) + beta * C, op = transpose when transA/transB. */
function gemmGradient(ctx: GradContext): (string | undefined)[] {
  const { b, needs, node } = ctx;
  const dy = ctx.dOutputs[0]!,
    A = ctx.inputs[0]!.name,
    B = ctx.inputs[1]!.name,
    C = ctx.inputs[2];
  const tA = attrInt(node, 'transA', 0) !== 0,
    tB = attrInt(node, 'transB', 0) !== 0;
  // ONNX float attributes are float32: use the value onnxruntime multiplies by.
  const alpha = Math.fround(attrFloat(node, 'alpha', 1)),
    beta = Math.fround(attrFloat(node, 'beta', 1));
  // d op(A) = alpha dY op(B)^T, so dA = alpha dY op(B)^T, or its transpose alpha op(B) dY^T when transA.
  const dA = needs[0] ? (tA ? gemm(b, B, dy, tB, true, alpha) : gemm(b, dy, B, false, !tB, alpha)) : undefined;
  // d op(B) = alpha op(A)^T dY, so dB = alpha op(A)^T dY, or alpha dY^T op(A) when transB.
  const dB = needs[1] ? (tB ? gemm(b, dy, A, true, tA, alpha) : gemm(b, A, dy, !tA, false, alpha)) : undefined;
  const dC = needs[2] && C ? b.sumToShape(b.scale(dy, beta), C.type.dims) : undefined;
  return [dA, dB, dC];
}

export const linalgOps: OpTable = {
  MatMul: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: matmulDims(ctx.node, input(ctx, 0).dims, input(ctx, 1).dims) }],
    gradient: matmulGradient,
  },
  Gemm: {
    infer: (ctx) => {
      const a = input(ctx, 0),
        bm = input(ctx, 1);
      if (a.dims.length !== 2 || bm.dims.length !== 2) fail(ctx.node, `Gemm needs 2-D operands, got [${a.dims}] and [${bm.dims}]`);
      const [m, k] = attrInt(ctx.node, 'transA', 0) ? [a.dims[1]!, a.dims[0]!] : [a.dims[0]!, a.dims[1]!];
      const [k2, n] = attrInt(ctx.node, 'transB', 0) ? [bm.dims[1]!, bm.dims[0]!] : [bm.dims[0]!, bm.dims[1]!];
      if (k !== k2) fail(ctx.node, `inner dimensions differ: [${a.dims}] x [${bm.dims}]`);
      return [{ dtype: a.dtype, dims: [m, n] }];
    },
    gradient: gemmGradient,
  },
  ...einsumOps,
  ...convOps,
};
