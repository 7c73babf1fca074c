/** Matrix products and convolutions. */
import { fail, input } from './common.js';
import type { OpTable } from './types.js';

/** numpy matmul shape rule. */
export function matmulDims(node: Parameters<typeof fail>[0], a: number[], b: number[]): number[] {
  const A = a.length === 1 ? [1, a[0]!] : a, B = b.length === 1 ? [b[0]!, 1] : b;
  const k = A[A.length - 1]!, k2 = B[B.length - 2]!;
  if (k !== k2) fail(node, `inner dimensions differ: [${a}] x [${b}]`);
  const batchA = A.slice(0, -2), batchB = B.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = batchA[i - rank + batchA.length] ?? 1, y = batchB[i - rank + batchB.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(node, `batch dimensions do not broadcast: [${a}] x [${b}]`);
    batch.push(Math.max(x, y));
  }
  const out = [...batch, A[A.length - 2]!, B[B.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

export const linalgOps: OpTable = {
  MatMul: {
    infer: (ctx) => [{ dtype: input(ctx, 0).dtype, dims: matmulDims(ctx.node, input(ctx, 0).dims, input(ctx, 1).dims) }],
  },
};
