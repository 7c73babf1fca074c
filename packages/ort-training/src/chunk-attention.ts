/**
 * DeriveOptions.chunkAttentionAbove: attention computed in blocks of queries, so no [.., T, T] tensor of a
 * layer exists whole. O = softmax(Q K^T * s) V is exact row by row (each query's softmax reads only its own
 * row of scores), so splitting Q along its rows, computing each block's O and concatenating is the same
 * function; the derived backward then works block by block too (the gradient of Concat is a Split, of Split a
 * Concat), and with recomputeAbove each block's probabilities are recomputed rather than kept. This is what
 * memory-efficient attention does (Rabe & Staats 2021, "Self-attention does not need O(n^2) memory"; the
 * query-chunked attention of diffusers' sliced attention), written as a graph rewrite for any exporter's
 * MatMul / Softmax / MatMul pattern.
 *
 * The pattern, per Softmax over the last axis whose output is at least `minBytes`:
 *   S0 = MatMul(A, B)                A: [.., T, d] (queries), B: [.., d, Tk] (keys, transposed)
 *   S  = f(S0)                        unary (Cast, Identity) or elementwise with an operand constant along the
 *                                     query axis (the scale; an additive mask [.., 1, Tk]), each read once
 *   P  = Softmax(S, axis=-1)
 *   P' = g(P)                         unary (Cast, Identity), each read once
 *   O  = MatMul(P', V)                P' its first input
 * where no tensor of the chain is a graph output or kept. Anything else is left as it is (and still correct):
 * a mask with a query axis, probabilities read by a loss (DynASyn's cross-attention maps are small and are read).
 */
import { makeAttr, type Graph, type Node } from './graph.js';
import { lookupOp } from './ops/registry.js';
import type { TensorType } from './ops/types.js';
import { DataType, elementSize, int64s, numel, type HostTensor } from './tensor.js';

const UNARY = new Set(['Cast', 'Identity']);
const BINARY = new Set(['Mul', 'Div', 'Add', 'Sub']);

const isDefault = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';

export interface ChunkedAttention {
  /** The Softmax node rewritten. */
  softmax: string;
  /** Query rows of the layer. */
  rows: number;
  /** Blocks it is now computed in. */
  blocks: number;
}

/**
 * Rewrites, in place, every attention of `g` whose probabilities take at least `minBytes` into blocks of
 * queries whose probabilities take less than `minBytes` each (one query row per block at the least). `types` (and `values`) are the graph's static
 * types, extended with the new tensors'. `protect` names tensors that must stay as they are (graph outputs,
 * the loss, kept outputs). Returns what it rewrote.
 */
export function chunkAttention(
  g: Graph,
  types: Map<string, TensorType>,
  values: Map<string, HostTensor>,
  opset: number,
  minBytes: number,
  protect: ReadonlySet<string>,
): ChunkedAttention[] {
  const bytes = (t: string) => {
    const ty = types.get(t);
    return ty ? numel(ty.dims) * elementSize(ty.dtype) : 0;
  };
  const producers = g.producers();
  const consumers = g.consumers();
  const outputs = new Set([...protect, ...g.outputs.map((o) => o.name)]);
  const readOnceBy = (t: string, n: Node) => !outputs.has(t) && (consumers.get(t) ?? []).length === 1 && consumers.get(t)![0] === n;

  const done: ChunkedAttention[] = [];
  const remove = new Set<Node>();
  for (const sm of [...g.nodes]) {
    if (sm.opType !== 'Softmax' || !isDefault(sm)) continue;
    const probs = sm.outputs[0]!;
    const pt = types.get(probs);
    if (!pt || pt.dims.length < 2 || bytes(probs) < minBytes) continue;
    const rank = pt.dims.length;
    const axis = Number(sm.attributes.find((a) => a.name === 'axis')?.i ?? -1);
    if (opset < 13 || (axis !== -1 && axis !== rank - 1)) continue;
    const rows = pt.dims[rank - 2]!;
    const sameShape = (t: string) => {
      const d = types.get(t)?.dims;
      return !!d && d.length === rank && d.every((x, i) => x === pt.dims[i]);
    };

    // after the softmax: unary ops, then the product with V
    const tail: Node[] = [];
    let t = probs;
    let product: Node | undefined;
    for (;;) {
      const readers = consumers.get(t) ?? [];
      const r = readers[0];
      if (outputs.has(t) || readers.length !== 1 || !r || !isDefault(r)) break;
      if (UNARY.has(r.opType) && sameShape(r.outputs[0]!)) {
        tail.push(r);
        t = r.outputs[0]!;
        continue;
      }
      if (r.opType === 'MatMul' && r.inputs[0] === t && r.inputs[1] !== t) product = r;
      break;
    }
    if (!product) continue;
    const out = product.outputs[0]!,
      od = types.get(out)?.dims;
    if (!od || od.length !== rank || od[rank - 2] !== rows) continue;

    // before the softmax: elementwise ops back to the scores' product
    const head: { node: Node; main: number }[] = [];
    let s = sm.inputs[0]!;
    let scores: Node | undefined;
    let ok = readOnceBy(s, sm);
    while (ok) {
      const p = producers.get(s);
      if (!p || !isDefault(p) || !sameShape(s)) {
        ok = false;
        break;
      }
      if (p.opType === 'MatMul') {
        scores = p;
        break;
      }
      let main = -1;
      if (UNARY.has(p.opType)) main = 0;
      else if (BINARY.has(p.opType) && p.inputs.length === 2) {
        // the operand on the path has the full shape; the other must be constant along the query axis
        const i =
          sameShape(p.inputs[0]!) && !alongRows(types.get(p.inputs[1]!)?.dims, rank)
            ? 0
            : sameShape(p.inputs[1]!) && !alongRows(types.get(p.inputs[0]!)?.dims, rank)
              ? 1
              : -1;
        main = i;
      }
      if (main < 0 || !readOnceBy(p.inputs[main]!, p)) {
        ok = false;
        break;
      }
      head.unshift({ node: p, main });
      s = p.inputs[main]!;
    }
    if (!ok || !scores) continue;
    const [a, bk] = scores.inputs as [string, string];
    const ad = types.get(a)?.dims;
    if (!ad || ad.length < 2 || ad[ad.length - 2] !== rows || a === bk) continue;

    // as few blocks as keep each block's probabilities under the limit, as even as rows allow
    const rowBytes = bytes(probs) / rows;
    const blocks = Math.ceil(rows / Math.max(1, Math.floor((minBytes - 1) / rowBytes)));
    if (blocks < 2) continue;
    const sizes = Array.from({ length: blocks }, (_, i) => Math.floor((rows * (i + 1)) / blocks) - Math.floor((rows * i) / blocks));
    const tag = (name: string) => g.uniqueName(`${name}/chunk`);
    const emit = (like: Node, inputs: string[], nOut = like.outputs.length, over: Partial<Node> = {}): string[] => {
      const outs = Array.from({ length: nOut }, (_, i) => tag(like.outputs[Math.min(i, like.outputs.length - 1)]!));
      const node = g.addNode({ ...like, ...over, inputs, outputs: outs, attributes: over.attributes ?? [...like.attributes], name: tag(like.name) });
      const def = lookupOp(node.domain, node.opType, node.name);
      const inferred = def.infer({
        node,
        opset,
        inputs: inputs.map((x) => (x ? types.get(x) : undefined)),
        values: inputs.map((x) => (x ? values.get(x) : undefined)),
      });
      outs.forEach((o, i) => types.set(o, inferred[i]!));
      return outs;
    };
    const sizesTensor = int64s(sizes);
    const splitSizes = g.addConstant(`${sm.name}/chunk_sizes`, sizesTensor);
    types.set(splitSizes, { dtype: DataType.INT64, dims: [sizes.length] });
    values.set(splitSizes, sizesTensor);
    const parts = emit(scores, [a, splitSizes], blocks, { opType: 'Split', attributes: [makeAttr('axis', ad.length - 2)] });
    const blockOutputs = parts.map((q) => {
      let x = emit(scores, [q, bk])[0]!;
      for (const { node, main } of head)
        x = emit(
          node,
          node.inputs.map((y, i) => (i === main ? x : y)),
        )[0]!;
      x = emit(sm, [x])[0]!;
      for (const n of tail) x = emit(n, [x])[0]!;
      return emit(product, [x, product.inputs[1]!])[0]!;
    });
    g.addNode({ opType: 'Concat', inputs: blockOutputs, outputs: [out], attributes: [makeAttr('axis', rank - 2)], name: tag(`${product.name}/concat`) });
    for (const n of [scores, ...head.map((h) => h.node), sm, ...tail, product]) remove.add(n);
    done.push({ softmax: sm.name, rows, blocks });
  }
  if (remove.size) g.nodes = g.nodes.filter((n) => !remove.has(n));
  return done;
}

/** Whether an operand of shape `dims` (broadcast to rank `rank`) varies along the query axis (rank - 2). */
function alongRows(dims: number[] | undefined, rank: number): boolean {
  if (!dims) return true;
  const i = dims.length - 2;
  return i >= 0 && dims[i] !== 1;
}
