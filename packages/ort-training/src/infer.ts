/**
 * Static type inference over a whole graph from concrete input shapes, folding constant subgraphs (shape
 * arithmetic as torch.onnx emits it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape) along the way.
 */
import { OrtTrainingError } from './errors.js';
import { type Graph, isExternal, initializerToHost, attrTensor } from './graph.js';
import { numel, type HostTensor } from './tensor.js';
import type { TensorType } from './ops/types.js';
import { lookupOp } from './ops/registry.js';
import { FOLD_LIMIT } from './ops/common.js';

export interface InferredTypes {
  types: Map<string, TensorType>;
  /** Tensors whose values are known statically (small initializers, constants, folded arithmetic). */
  values: Map<string, HostTensor>;
}

export interface InferOptions {
  /** Concrete shapes for graph inputs (required for inputs with symbolic or unknown dimensions). */
  inputShapes?: Record<string, number[]>;
  /** Opset version of the default domain. */
  opset: number;
}

export function inferTypes(graph: Graph, options: InferOptions): InferredTypes {
  const types = new Map<string, TensorType>();
  const values = new Map<string, HostTensor>();
  for (const [name, init] of graph.initializers) {
    types.set(name, { dtype: init.dtype, dims: [...init.dims] });
    if (!isExternal(init.data) && numel(init.dims) <= FOLD_LIMIT) values.set(name, initializerToHost(init));
  }
  for (const v of graph.inputs) {
    if (graph.initializers.has(v.name)) continue;
    const given = options.inputShapes?.[v.name];
    if (given) {
      if (v.shape && (v.shape.length !== given.length || v.shape.some((d, i) => typeof d === 'number' && d !== given[i]))) {
        throw new OrtTrainingError('BAD_ARGUMENT', `input ${v.name}: shape [${given}] does not match the model's [${v.shape.map((d) => d ?? '?')}]`);
      }
      types.set(v.name, { dtype: v.dtype, dims: [...given] });
    } else if (v.shape && v.shape.every((d) => typeof d === 'number')) {
      types.set(v.name, { dtype: v.dtype, dims: v.shape as number[] });
    } else {
      throw new OrtTrainingError(
        'BAD_ARGUMENT',
        `input ${v.name} has shape [${(v.shape ?? []).map((d) => d ?? '?')}] with symbolic dimensions: give its concrete shape`,
      );
    }
  }
  for (const node of graph.topologicalOrder()) {
    if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx') && attrTensor(node, 'value')) {
      // handled by the op definition too; fast path keeps big constants from being decoded twice
    }
    const def = lookupOp(node.domain, node.opType, node.name);
    const inputs = node.inputs.map((n) => {
      if (!n) return undefined;
      const t = types.get(n);
      if (!t)
        throw new OrtTrainingError(
          'SHAPE_INFERENCE',
          `${node.opType} node ${node.name}: input ${n} has no known type (is it produced by a node or given as an input?)`,
        );
      return t;
    });
    const inVals = node.inputs.map((n) => (n ? values.get(n) : undefined));
    const ctx = { node, opset: options.opset, inputs, values: inVals };
    let outTypes: TensorType[];
    try {
      outTypes = def.infer(ctx);
    } catch (e) {
      if (e instanceof OrtTrainingError) throw e;
      throw new OrtTrainingError('SHAPE_INFERENCE', `${node.opType} node ${node.name}: ${(e as Error).message}`, { cause: e });
    }
    node.outputs.forEach((o, i) => {
      if (o && outTypes[i]) types.set(o, outTypes[i]!);
    });
    // Shape and Size read only the static type of their input, so they fold whatever the input's value.
    const typeOnly = (node.opType === 'Shape' || node.opType === 'Size') && (node.domain === '' || node.domain === 'ai.onnx');
    const allKnown = typeOnly || node.inputs.every((n, i) => !n || inVals[i] !== undefined);
    if (def.evaluate && allKnown && outTypes.every((t) => numel(t.dims) <= FOLD_LIMIT)) {
      const folded = def.evaluate(ctx);
      folded?.forEach((v, i) => {
        const o = node.outputs[i];
        if (o) values.set(o, v);
      });
    }
  }
  return { types, values };
}
