/**
 * Finding the cross-attention softmaxes of a UNet graph. Two ways, for any exporter:
 *   - by scope name: torch.onnx names nodes after the module path (`/up_blocks.1/attentions.0/
 *     transformer_blocks.0/attn2/Softmax`), and diffusers calls cross-attention `attn2`;
 *   - by structure, when the names say nothing: a Softmax over the product of a query that depends on the
 *     latent `sample` and a key that depends on `encoder_hidden_states` but not on the sample. (Self-attention
 *     keys depend on the sample; every layer after the first cross-attention also depends on the context,
 *     so "descends from the context" alone would not do.)
 * Shapes come from ort-training's static inference at the given input shapes.
 */
import { inferTypes, defaultOpset, type Graph, type Node, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';

export type UNetBlock = 'down' | 'mid' | 'up';

export interface CrossAttentionLayer {
  /** Name of the Softmax node. */
  softmax: string;
  /** Its output: the attention probabilities. */
  probs: string;
  /** Module scope (`/down_blocks.2/attentions.0/transformer_blocks.0/attn2`), or '' when the graph has no names. */
  scope: string;
  block: UNetBlock;
  /** h*w latent cells of this layer. */
  queryLength: number;
  /** Prompt tokens (77 for CLIP). */
  keyLength: number;
  heads: number;
  /** [h, w] of this layer's feature map. */
  grid: [number, number];
  /** `batch-heads`: softmax over [B*heads, q, k] (heads folded into the batch); `heads-axis`: [B, heads, q, k]. */
  layout: 'batch-heads' | 'heads-axis';
}

export interface UNetInputNames {
  /** Latent input [B, C, H, W] (default `sample`). */
  sample?: string;
  /** Text context [B, L, D] (default `encoder_hidden_states`). */
  context?: string;
}

/** Ops between the attention scores' MatMul and the Softmax (scaling, masks, reshapes). */
const SCORE_PATH_OPS = new Set(['Mul', 'Div', 'Add', 'Sub', 'Cast', 'Reshape', 'Transpose', 'Identity', 'Squeeze', 'Unsqueeze', 'Where']);

const ATTN2 = /(^|[/.])attn2([/.]|$)/;

/**
 * Every cross-attention layer of `unet`, in graph order. `inputShapes` gives concrete shapes for inputs with
 * symbolic dimensions (sample [B,4,H,W], timestep, encoder_hidden_states [B,77,D]).
 */
export function findCrossAttentionLayers(unet: OnnxModel, inputShapes: Record<string, number[]>, names: UNetInputNames = {}): CrossAttentionLayer[] {
  const g = unet.graph;
  const sampleName = names.sample ?? 'sample';
  const contextName = names.context ?? 'encoder_hidden_states';
  for (const n of [sampleName, contextName]) {
    if (!g.inputs.some((v) => v.name === n))
      throw new DiffusionError('BAD_MODEL', `the UNet has no input ${n} (inputs: ${g.inputs.map((v) => v.name).join(', ')})`);
  }
  let types;
  try {
    types = inferTypes(g, { inputShapes, opset: defaultOpset(unet) }).types;
  } catch (e) {
    throw new DiffusionError('BAD_ARGUMENT', `cannot infer the UNet's shapes: ${(e as Error).message}`, { cause: e });
  }
  const sampleDims = types.get(sampleName)!.dims;
  const contextDims = types.get(contextName)!.dims;
  const [batch, , H, W] = sampleDims as [number, number, number, number];
  const L = contextDims[1]!;

  const order = g.topologicalOrder();
  const softmaxes = order.filter((n) => n.opType === 'Softmax');
  const named = softmaxes.filter((n) => ATTN2.test(n.name));
  const byName = named.length > 0;
  const chosen = byName ? named : structuralCrossAttention(g, order, softmaxes, sampleName, contextName);
  // scope names give the block; graphs without them (or with other names) get it from the skip connections
  const blocks = byName && chosen.every((n) => blockFromScope(n.name)) ? undefined : classifyBlocks(g, order, chosen, types);

  return chosen.map((n, i) => {
    const probs = n.outputs[0]!;
    const dims = types.get(probs)?.dims ?? [];
    const rank = dims.length;
    const axis = Number(n.attributes.find((a) => a.name === 'axis')?.i ?? -1);
    if ((rank !== 3 && rank !== 4) || (axis !== -1 && axis !== rank - 1)) {
      throw new DiffusionError(
        'UNSUPPORTED',
        `cross-attention softmax ${n.name} has shape [${dims}] and axis ${axis}; expected [B*heads, q, k] or [B, heads, q, k] over the last axis`,
      );
    }
    const q = dims[rank - 2]!,
      k = dims[rank - 1]!;
    const heads = rank === 4 ? dims[1]! : dims[0]! / batch;
    if (k !== L || !Number.isInteger(heads) || (rank === 4 && dims[0] !== batch)) {
      throw new DiffusionError(
        'UNSUPPORTED',
        `cross-attention softmax ${n.name} has shape [${dims}], which does not fit batch ${batch} and ${L} context tokens`,
      );
    }
    const scope = byName ? n.name.slice(0, n.name.search(ATTN2) + n.name.match(ATTN2)![0].replace(/[/.]$/, '').length) : '';
    return {
      softmax: n.name,
      probs,
      scope,
      block: blocks?.[i] ?? blockFromScope(n.name)!,
      queryLength: q,
      keyLength: k,
      heads,
      grid: gridOf(q, H, W),
      layout: rank === 4 ? 'heads-axis' : 'batch-heads',
    } satisfies CrossAttentionLayer;
  });
}

function blockFromScope(name: string): UNetBlock | undefined {
  if (/down_blocks|(^|\/)down/.test(name)) return 'down';
  if (/mid_block|(^|\/)mid/.test(name)) return 'mid';
  if (/up_blocks|(^|\/)up/.test(name)) return 'up';
  return undefined;
}

/** The feature-map size with q cells: the latent halved s times (rounding up, as stride-2 convs do). */
export function gridOf(q: number, H: number, W: number): [number, number] {
  for (let h = H, w = W; ; h = Math.ceil(h / 2), w = Math.ceil(w / 2)) {
    if (h * w === q) return [h, w];
    if (h === 1 && w === 1) break;
  }
  const side = Math.round(Math.sqrt(q));
  return side * side === q ? [side, side] : [q, 1];
}

/** Bit sets: which of the graph inputs each tensor's values depend on (shapes read by Shape/Size do not count). */
function inputDependencies(g: Graph, order: Node[], inputs: string[]): Map<string, number> {
  const deps = new Map<string, number>();
  inputs.forEach((n, i) => deps.set(n, 1 << i));
  for (const n of order) {
    if (n.opType === 'Shape' || n.opType === 'Size') continue;
    let d = 0;
    for (const x of n.inputs) if (x) d |= deps.get(x) ?? 0;
    if (d) for (const o of n.outputs) if (o) deps.set(o, d);
  }
  return deps;
}

function structuralCrossAttention(g: Graph, order: Node[], softmaxes: Node[], sample: string, context: string): Node[] {
  const deps = inputDependencies(g, order, [sample, context]);
  const SAMPLE = 1,
    CONTEXT = 2;
  const producer = g.producers();
  return softmaxes.filter((sm) => {
    // walk back from the scores to the MatMul(s) that made them
    const stack: [string, number][] = [[sm.inputs[0]!, 0]];
    while (stack.length) {
      const [t, depth] = stack.pop()!;
      const p = producer.get(t);
      if (!p || depth > 8) continue;
      if (p.opType === 'MatMul' || p.opType === 'Einsum') {
        const [a, b] = p.inputs.map((x) => deps.get(x) ?? 0) as [number, number];
        const isKey = (d: number) => (d & CONTEXT) !== 0 && (d & SAMPLE) === 0;
        if ((isKey(b) && (a & SAMPLE) !== 0) || (isKey(a) && (b & SAMPLE) !== 0)) return true;
      } else if (SCORE_PATH_OPS.has(p.opType)) {
        for (const x of p.inputs) if (x) stack.push([x, depth + 1]);
      }
    }
    return false;
  });
}

/**
 * Blocks from the UNet's skip connections, for graphs without names: the up path starts at the first
 * channel Concat (h, last skip); the down path is everything the last skip depends on; the rest is mid.
 */
function classifyBlocks(g: Graph, order: Node[], layers: Node[], types: Map<string, { dims: number[] }>): UNetBlock[] {
  const producer = g.producers();
  const firstConcat = order.find(
    (n) =>
      n.opType === 'Concat' &&
      types.get(n.outputs[0]!)?.dims.length === 4 &&
      Number(n.attributes.find((a) => a.name === 'axis')?.i ?? 0) === 1 &&
      n.inputs.length === 2,
  );
  if (!firstConcat) return layers.map(() => 'mid');
  const ancestors = (t: string): Set<Node> => {
    const seen = new Set<Node>();
    const stack = [t];
    while (stack.length) {
      const p = producer.get(stack.pop()!);
      if (!p || seen.has(p)) continue;
      seen.add(p);
      stack.push(...p.inputs.filter(Boolean));
    }
    return seen;
  };
  const [a, b] = firstConcat.inputs as [string, string];
  const aAnc = ancestors(a),
    bAnc = ancestors(b);
  const lastSkip = producer.get(a) && bAnc.has(producer.get(a)!) ? aAnc : bAnc; // the skip feeds the other operand
  const upStart = new Set<Node>([firstConcat]);
  for (const n of order) if (!upStart.has(n) && n.inputs.some((x) => x && upStart.has(producer.get(x)!))) upStart.add(n);
  return layers.map((n) => (upStart.has(n) ? 'up' : lastSkip.has(n) ? 'down' : 'mid'));
}
