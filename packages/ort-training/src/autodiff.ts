/**
 * Reverse-mode automatic differentiation over an ONNX graph. The result is one graph that computes the
 * forward pass and the gradients of a scalar loss with respect to chosen tensors, made of standard ops that
 * onnxruntime runs on any execution provider. Only nodes on a path from a requested tensor to the loss are
 * differentiated, so frozen weights get no weight gradients.
 */
import { OrtTrainingError } from './errors.js';
import { Graph, type Node } from './graph.js';
import { type OnnxModel, defaultOpset } from './model.js';
import { chunkAttention } from './chunk-attention.js';
import { Builder } from './builder.js';
import { inferTypes } from './infer.js';
import { isFloat, fromNumbers, numel, dataTypeName, elementSize, type HostTensor } from './tensor.js';
import { lookupOp } from './ops/registry.js';
import type { TensorRef, TensorType } from './ops/types.js';

export interface DeriveOptions {
  /** Name of the scalar loss tensor (any tensor of the graph, usually an output). */
  loss: string;
  /** Initializers or graph inputs to differentiate with respect to. Initializers become graph inputs. */
  wrt: string[];
  /** Concrete shapes for graph inputs with symbolic dimensions. */
  inputShapes?: Record<string, number[]>;
  /** Further tensors to keep as graph outputs (e.g. loss terms to log). */
  keepOutputs?: string[];
  /** A requested tensor the loss does not depend on gets a zero gradient instead of an error. */
  allowUnused?: boolean;
  /** Suffix of gradient output names (default `_grad`). */
  gradSuffix?: string;
  /**
   * Recompute instead of keeping: every Softmax output of at least this many bytes (attention probabilities,
   * [.., T, T]: 671 MB per self-attention layer of SD 2.1 at 64x64 latents and batch 2) is not kept for the
   * backward pass but recomputed there from the tensors its scores come from (queries and keys, T x d), as
   * training systems do (activation checkpointing, FlashAttention's backward). Costs one more scores product
   * per such layer. Default: keep everything.
   */
  recomputeAbove?: number;
  /**
   * Attention computed in blocks of queries: every attention whose probabilities ([.., T, Tk]) take at least
   * this many bytes is rewritten so that no block's take as many (see chunk-attention.ts). The same function;
   * the forward and the backward then hold one block's T x Tk tensors at a time instead of the layer's (SD 2.1
   * at 768 px: 3.4 GB per self-attention layer at batch 2). Default: no rewrite.
   */
  chunkAttentionAbove?: number;
}

export interface DerivedGraph {
  model: OnnxModel;
  /** Gradient output name for each requested tensor. */
  gradientOutputs: Record<string, string>;
}

/** The lowest opset the emitted gradient nodes need (ScatterND with reduction=add is opset 16). */
const MIN_OPSET = 16;

export function deriveGradientGraph(model: OnnxModel, options: DeriveOptions): DerivedGraph {
  const sourceOpset = defaultOpset(model);
  if (sourceOpset < 13) {
    throw new OrtTrainingError('BAD_MODEL', `model uses opset ${sourceOpset}; ort-training needs opset 13 or later (re-export with a newer opset)`);
  }
  const opset = Math.max(sourceOpset, MIN_OPSET);
  const g = cloneGraph(model.graph);
  const suffix = options.gradSuffix ?? '_grad';

  let producers = g.producers();
  const known = new Set([...g.sources(), ...producers.keys()]);
  const missing = options.wrt.filter((t) => !g.initializers.has(t) && !g.inputs.some((v) => v.name === t));
  if (missing.length) {
    const hint = (t: string) => {
      const near = [...g.initializers.keys(), ...g.inputs.map((v) => v.name)].filter((n) => n.includes(t) || t.includes(n)).slice(0, 3);
      return near.length ? ` (did you mean ${near.join(', ')}?)` : '';
    };
    throw new OrtTrainingError('UNKNOWN_TENSOR', `--wrt names no initializer or graph input: ${missing.map((t) => `${t}${hint(t)}`).join('; ')}`);
  }
  if (!known.has(options.loss))
    throw new OrtTrainingError('UNKNOWN_TENSOR', `loss tensor ${options.loss} is not in the graph (outputs: ${g.outputs.map((o) => o.name).join(', ')})`);
  for (const k of options.keepOutputs ?? [])
    if (!known.has(k)) throw new OrtTrainingError('UNKNOWN_TENSOR', `tensor ${k} (to keep as an output) is not in the graph`);
  if (new Set(options.wrt).size !== options.wrt.length) throw new OrtTrainingError('BAD_ARGUMENT', 'a tensor is named twice in wrt');

  for (const t of options.wrt) if (g.initializers.has(t)) g.promoteInitializerToInput(t);

  const { types, values } = inferTypes(g, { inputShapes: options.inputShapes, opset });
  for (const t of options.wrt) {
    const ty = types.get(t)!;
    if (!isFloat(ty.dtype))
      throw new OrtTrainingError('BAD_ARGUMENT', `cannot differentiate with respect to ${t}: it is ${dataTypeName(ty.dtype)}, not a floating-point tensor`);
    values.delete(t); // trainable: never folded
  }
  if (options.chunkAttentionAbove !== undefined) {
    const keep = new Set([options.loss, ...(options.keepOutputs ?? [])]);
    if (chunkAttention(g, types, values, opset, options.chunkAttentionAbove, keep).length) producers = g.producers();
  }
  const lossType = types.get(options.loss)!;
  if (numel(lossType.dims) !== 1) {
    throw new OrtTrainingError(
      'NOT_SCALAR',
      `loss ${options.loss} must be a scalar, but its shape is [${lossType.dims.join(',')}] (reduce it, e.g. with ReduceMean)`,
    );
  }
  if (!isFloat(lossType.dtype)) throw new OrtTrainingError('NOT_SCALAR', `loss ${options.loss} is ${dataTypeName(lossType.dtype)}, not floating point`);

  // Values the trainables influence are not constants, even if folding found them (it did not: they are inputs).
  const order = g.topologicalOrder();
  const forwardReach = new Set(options.wrt);
  // Shape and Size see only static types: their outputs stay constants (torch.onnx's shape arithmetic).
  const typeOnly = (n: Node) => (n.opType === 'Shape' || n.opType === 'Size') && (n.domain === '' || n.domain === 'ai.onnx');
  for (const n of order) if (!typeOnly(n) && n.inputs.some((i) => i && forwardReach.has(i))) for (const o of n.outputs) if (o) forwardReach.add(o);
  for (const t of forwardReach) values.delete(t);

  // Backward reach from the loss, restricted to what the trainables influence.
  const active = new Set<string>([options.loss]);
  const activeNodes: Node[] = [];
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    if (!n.outputs.some((o) => o && active.has(o))) continue;
    if (!n.inputs.some((x) => x && forwardReach.has(x))) continue;
    activeNodes.push(n);
    for (const x of n.inputs) if (x && forwardReach.has(x) && isFloat(types.get(x)!.dtype)) active.add(x);
  }

  const b = new Builder(g, opset, types, values);
  const grads = new Map<string, string[]>();
  const push = (name: string, grad: string) => {
    const l = grads.get(name);
    if (l) l.push(grad);
    else grads.set(name, [grad]);
  };
  const settled = new Map<string, string>();
  const gradOf = (name: string): string | undefined => {
    if (settled.has(name)) return settled.get(name);
    const parts = grads.get(name);
    const s = parts ? b.sum(parts) : undefined;
    if (s) settled.set(name, s);
    return s;
  };

  push(options.loss, b.constant(fromNumbers(lossType.dtype, lossType.dims, [1]), 'dloss'));

  // Forward consumers, read by rules that recognise a pattern (softmax feeding attention's product).
  const consumers = new Map<string, Node[]>();
  for (const n of order)
    for (const x of new Set(n.inputs))
      if (x) {
        const l = consumers.get(x);
        if (l) l.push(n);
        else consumers.set(x, [n]);
      }
  const outputNames = new Set([options.loss, ...(options.keepOutputs ?? []), ...g.outputs.map((o) => o.name)]);

  const rematerialize = recomputer(g, b, producers, types, values, activeNodes, options.recomputeAbove);

  for (const node of activeNodes) {
    // reverse topological order
    const def = lookupOp(node.domain, node.opType, node.name);
    const dOutputs = node.outputs.map((o) => (o ? gradOf(o) : undefined));
    if (dOutputs.every((d) => d === undefined)) continue;
    const needs = node.inputs.map((x) => !!x && active.has(x) && forwardReach.has(x));
    if (!needs.some(Boolean)) continue;
    if (def.nonDifferentiable) continue;
    if (!def.gradient) {
      throw new OrtTrainingError(
        'NO_GRADIENT',
        `operator ${node.opType} (node ${node.name}) has no gradient rule, and the loss depends on its input ${node.inputs.filter((_, i) => needs[i]).join(', ')}`,
      );
    }
    b.scope = `${node.opType}:${node.name}`;
    const emittedBefore = g.nodes.length;
    const ref = (name: string): TensorRef => ({ name, type: b.type(name), ...(values.has(name) ? { value: values.get(name)! } : {}) });
    const inGrads = def.gradient({
      node,
      opset,
      b,
      dOutputs,
      needs,
      consumers: (t) => consumers.get(t) ?? [],
      gradientOf: gradOf,
      isOutput: (t) => outputNames.has(t),
      inputs: node.inputs.map((x) => (x ? ref(x) : undefined)),
      outputs: node.outputs.map((o) => ref(o)),
    });
    rematerialize(
      g.nodes.slice(emittedBefore),
      dOutputs.find((d) => d !== undefined)!,
    );
    node.inputs.forEach((x, i) => {
      const gi = inGrads[i];
      if (needs[i] && gi) {
        const want = types.get(x)!,
          got = b.type(gi);
        if (want.dims.length !== got.dims.length || want.dims.some((d, k) => d !== got.dims[k])) {
          throw new OrtTrainingError(
            'BAD_STATE',
            `gradient rule of ${node.opType} (node ${node.name}) gave [${got.dims}] for input ${x} of shape [${want.dims}]`,
          );
        }
        push(x, gi);
      }
    });
  }

  b.scope = '';
  const gradientOutputs: Record<string, string> = {};
  const outputs = [{ name: options.loss, dtype: lossType.dtype, shape: [...lossType.dims] }];
  for (const t of options.wrt) {
    let gt = gradOf(t);
    const ty = types.get(t)!;
    if (!gt) {
      if (!options.allowUnused) throw new OrtTrainingError('NO_GRADIENT', `the loss ${options.loss} does not depend on ${t}`);
      gt = b.zeros(ty);
    }
    const outName = g.uniqueName(`${t}${suffix}`);
    g.addNode({ opType: 'Identity', inputs: [gt], outputs: [outName], name: g.uniqueName(`${outName}_identity`) });
    gradientOutputs[t] = outName;
    outputs.push({ name: outName, dtype: ty.dtype, shape: [...ty.dims] });
  }
  for (const k of options.keepOutputs ?? []) {
    if (outputs.some((o) => o.name === k)) continue;
    const ty = types.get(k)!;
    outputs.push({ name: k, dtype: ty.dtype, shape: [...ty.dims] });
  }
  g.outputs = outputs;
  // Fix the concrete shapes of the inputs the graph was specialised to.
  g.inputs = g.inputs.map((v) => ({ ...v, shape: [...types.get(v.name)!.dims] }));
  g.valueInfo = new Map();
  g.removeDeadNodes();
  g.sortTopologically();

  const opsetImports = model.opsetImports.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? { ...o, version: opset } : o));
  if (!opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')) opsetImports.push({ domain: '', version: opset });
  return {
    model: { ...model, irVersion: Math.max(model.irVersion, 8), opsetImports, graph: g, producerName: 'ort-training', producerVersion: '0.1.0' },
    gradientOutputs,
  };
}

/**
 * DeriveOptions.recomputeAbove: returns a pass over the nodes a gradient rule just emitted that makes each
 * of them read a recomputed copy of a large Softmax output instead of the forward one, so the forward tensor
 * dies with its forward readers. The copy is the forward chain from the Softmax back to its first tensors
 * below the size (queries, keys: kept anyway), re-emitted once per tensor and shared by all its backward
 * readers. Its inputs get + 0 * sum(dY) (dY: a gradient already computed when the copy is needed): the copy
 * then differs from the forward nodes, so onnxruntime neither merges the two (common subexpressions) nor
 * runs the copy early (it must wait for dY), which would keep it alive as long as the original.
 */
function recomputer(
  g: Graph,
  b: Builder,
  producers: Map<string, Node>,
  types: Map<string, TensorType>,
  values: Map<string, HostTensor>,
  activeNodes: Node[],
  minBytes: number | undefined,
): (emitted: Node[], gradient: string) => void {
  const size = (t: string) => {
    const ty = types.get(t);
    return ty ? numel(ty.dims) * elementSize(ty.dtype) : 0;
  };
  const targets = new Set<string>();
  if (minBytes !== undefined) {
    for (const n of activeNodes)
      if (n.opType === 'Softmax' && (n.domain === '' || n.domain === 'ai.onnx') && size(n.outputs[0]!) >= minBytes) targets.add(n.outputs[0]!);
  }
  if (targets.size === 0) return () => {};
  const copies = new Map<string, string>();
  const copy = (t: string, gate: () => string): string => {
    const known = copies.get(t);
    if (known) return known;
    const p = producers.get(t)!;
    const inputs = p.inputs.map((x) => {
      if (!x || values.has(x) || g.initializers.has(x) || !isFloat(types.get(x)!.dtype)) return x;
      const big = size(x) >= minBytes! && producers.has(x);
      return big ? copy(x, gate) : b.add(x, b.cast(gate(), types.get(x)!.dtype));
    });
    const outs = b.copyOf(p, inputs);
    p.outputs.forEach((o, i) => copies.set(o, outs[i]!));
    return copies.get(t)!;
  };
  return (emitted, gradient) => {
    let gate: string | undefined;
    const gateOf = () =>
      (gate ??= b.scale(
        b.reduceSum(
          gradient,
          b.dims(gradient).map((_, i) => i),
          false,
        ),
        0,
      ));
    for (const n of emitted) {
      if (!n.inputs.some((x) => x && targets.has(x))) continue;
      n.inputs = n.inputs.map((x) => (x && targets.has(x) ? copy(x, gateOf) : x));
    }
  };
}

function cloneGraph(src: Graph): Graph {
  return new Graph({
    name: src.name,
    nodes: src.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })),
    inputs: src.inputs.map((v) => ({ ...v })),
    outputs: src.outputs.map((v) => ({ ...v })),
    initializers: new Map(src.initializers),
    valueInfo: new Map(src.valueInfo),
    extra: { ...src.extra },
  });
}
