/**
 * Einsum in the forms torch.onnx emits ('bij,bjk->bik', 'i,j->ij', 'bhqd,bhkd->bhqk'): one letter per axis,
 * no ellipsis and no letter repeated inside one operand (diagonals); other forms fail with a clear error.
 */
import { attrString, type Node } from '../graph.js';
import { fail, input } from './common.js';
import type { GradContext, OpTable } from './types.js';

export interface EinsumSpec {
  terms: string[];
  out: string;
}

export function parseEinsum(node: Node, nInputs: number): EinsumSpec {
  const eq = attrString(node, 'equation', '').replace(/\s/g, '');
  if (eq.includes('.')) fail(node, `Einsum equation '${eq}' uses an ellipsis, which ort-training does not support`);
  const [lhs = '', rhs] = eq.split('->');
  const terms = lhs.split(',');
  if (terms.length !== nInputs) fail(node, `Einsum equation '${eq}' has ${terms.length} operands, the node ${nInputs}`);
  for (const t of [...terms, rhs ?? '']) {
    if (!/^[a-zA-Z]*$/.test(t)) fail(node, `Einsum equation '${eq}' is malformed`);
    if (new Set(t).size !== t.length) fail(node, `Einsum equation '${eq}' repeats a letter in '${t}' (diagonals are not supported)`);
  }
  // Implicit form: the output lists the letters used exactly once, in alphabetical order.
  const count = (c: string) => terms.join('').split(c).length - 1;
  const out =
    rhs ??
    [...new Set(terms.join(''))]
      .filter((c) => count(c) === 1)
      .sort()
      .join('');
  for (const c of out) if (!terms.some((t) => t.includes(c))) fail(node, `Einsum output letter '${c}' appears in no operand`);
  return { terms, out };
}

/** Size of every letter, checked for agreement between operands. */
function letterSizes(node: Node, terms: string[], dims: number[][]): Map<string, number> {
  const size = new Map<string, number>();
  terms.forEach((t, i) => {
    if (t.length !== dims[i]!.length) fail(node, `Einsum operand ${i} has rank ${dims[i]!.length}, term '${t}' has ${t.length} letters`);
    [...t].forEach((c, k) => {
      const d = dims[i]![k]!,
        prev = size.get(c);
      if (prev !== undefined && prev !== d) fail(node, `Einsum letter '${c}' has sizes ${prev} and ${d}`);
      size.set(c, d);
    });
  });
  return size;
}

/**
 * The gradient of operand i is the einsum of the other operands and dY back onto term i. Letters only
 * operand i has (summed away inside it, e.g. j in 'ij->i') do not occur there: dY is constant along them,
 * so the product is computed without them and broadcast.
 */
function einsumGradient(ctx: GradContext): (string | undefined)[] {
  const { b, node } = ctx;
  const { terms, out } = parseEinsum(node, ctx.inputs.length);
  return terms.map((term, i) => {
    if (!ctx.needs[i]) return undefined;
    const others = terms.filter((_, j) => j !== i);
    const names = ctx.inputs.filter((_, j) => j !== i).map((t) => t!.name);
    const seen = new Set([...others.join(''), ...out]);
    const kept = [...term].filter((c) => seen.has(c)).join('');
    const g = b.op('Einsum', [...names, ctx.dOutputs[0]!], { equation: `${[...others, out].join(',')}->${kept}` });
    if (kept.length === term.length) return g;
    const missing = [...term].flatMap((c, k) => (seen.has(c) ? [] : [k]));
    return b.expand(b.unsqueeze(g, missing), ctx.inputs[i]!.type.dims);
  });
}

export const einsumOps: OpTable = {
  Einsum: {
    infer: (ctx) => {
      const { terms, out } = parseEinsum(ctx.node, ctx.inputs.length);
      const size = letterSizes(
        ctx.node,
        terms,
        ctx.inputs.map((_, i) => input(ctx, i).dims),
      );
      return [{ dtype: input(ctx, 0).dtype, dims: [...out].map((c) => size.get(c)!) }];
    },
    gradient: einsumGradient,
  },
};
