/**
 * One graph from two: the text encoder's `last_hidden_state` feeds the UNet's `encoder_hidden_states`.
 * onnxruntime-node runs one session per graph, and the training step needs gradients to flow from the UNet
 * back into the placeholder rows of the text encoder, so both must live in one ONNX graph.
 *
 * Every tensor and node name of each part gets a prefix (`text_encoder/`, `unet/`): torch.onnx numbers
 * anonymous weights per export (`onnx::MatMul_1006` exists in both SD exports). Names listed in `keep`
 * (graph inputs shared with the caller, adapter tensors) are left alone. Initializers keep their data,
 * inline bytes or external-data references: weights are never read here.
 */
import { Graph, defaultOpset, type Initializer, type Node, type OnnxModel, type OpsetImport, type ValueInfo } from '@dynasyn/ort-training';
import { DiffusionError } from '@dynasyn/diffusion';

/** One model to merge, and how its names map into the merged graph. */
export interface GraphPart {
  model: OnnxModel;
  /** Prefix of every name not in `rename` or `keep` (e.g. `unet/`). */
  prefix: string;
  /** Explicit new names (e.g. `sample` -> `noisy_latents`, `encoder_hidden_states` -> the encoder's output). */
  rename?: Map<string, string>;
  /** Names kept verbatim (shared inputs such as `input_ids`, adapter tensors `lora/...`). */
  keep?: Set<string>;
  /** Graph inputs of this part that another part produces (they are not inputs of the merged graph). */
  internalInputs?: Set<string>;
  /**
   * Prefix of this part's initializers when it differs from `prefix`: a second copy of a model (the frozen
   * branch) names its weights like the first, so both read ONE set of weights. An initializer merged under a
   * name that already exists must then hold the same data.
   */
  initializerPrefix?: string;
}

/** The merged name of `name` in `part`. */
export function mergedName(part: GraphPart, name: string): string {
  if (name === '') return ''; // an omitted optional input
  const prefix = part.initializerPrefix !== undefined && part.model.graph.initializers.has(name) ? part.initializerPrefix : part.prefix;
  return part.rename?.get(name) ?? (part.keep?.has(name) ? name : `${prefix}${name}`);
}

/** The same weight: one object, one external range, or equal inline bytes. */
function sameData(a: Initializer, b: Initializer): boolean {
  if (a.data === b.data) return true;
  if (a.dtype !== b.dtype || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = a.data,
    y = b.data;
  if (x instanceof Uint8Array && y instanceof Uint8Array) return x.byteLength === y.byteLength && x.every((v, i) => v === y[i]);
  if (!(x instanceof Uint8Array) && !(y instanceof Uint8Array)) return x.path === y.path && x.offset === y.offset && x.length === y.length;
  return false;
}

/** ONNX changed how Reduce* ops take their axes at opset 18; graphs on both sides of it cannot share one opset. */
function mergedOpsets(parts: GraphPart[]): OpsetImport[] {
  const defaults = parts.map((p) => defaultOpset(p.model));
  if (defaults.some((v) => v >= 18) && defaults.some((v) => v < 18)) {
    throw new DiffusionError(
      'UNSUPPORTED',
      `cannot merge models exported at opsets ${defaults.join(' and ')} (ONNX changed the Reduce ops at opset 18); re-export them at one opset`,
    );
  }
  const byDomain = new Map<string, number>();
  for (const p of parts) {
    for (const o of p.model.opsetImports) {
      const d = o.domain === 'ai.onnx' ? '' : o.domain;
      byDomain.set(d, Math.max(byDomain.get(d) ?? 0, o.version));
    }
  }
  return [...byDomain].map(([domain, version]) => ({ domain, version }));
}

/**
 * Merge `parts` into one model. Graph inputs: every part's inputs except `internalInputs`, deduplicated by
 * merged name (a shared input must have one type). Graph outputs: none (the caller adds the ones it wants;
 * dead branches such as CLIP's pooler are removed when it calls `removeDeadNodes`).
 */
export function mergeModels(parts: GraphPart[], name = 'dynasyn'): OnnxModel {
  const g = new Graph({ name });
  for (const part of parts) {
    const src = part.model.graph;
    const m = (x: string) => mergedName(part, x);
    for (const n of src.nodes) {
      if (n.attributes.some((a) => a.g || a.graphs?.length)) {
        throw new DiffusionError(
          'UNSUPPORTED',
          `node ${n.name} (${n.opType}) of ${src.name} has a subgraph; merging graphs with control flow is not supported`,
        );
      }
      const node: Node = { ...n, name: m(n.name), inputs: n.inputs.map(m), outputs: n.outputs.map(m), attributes: [...n.attributes] };
      g.nodes.push(node);
    }
    for (const init of src.initializers.values()) {
      const renamed: Initializer = { ...init, name: m(init.name) };
      const prior = g.initializers.get(renamed.name);
      if (prior) {
        if (part.initializerPrefix !== undefined && sameData(prior, renamed)) continue;
        throw new DiffusionError(
          'BAD_MODEL',
          `two merged models both define initializer ${renamed.name}${part.initializerPrefix !== undefined ? ' with different values' : ''}`,
        );
      }
      g.initializers.set(renamed.name, renamed);
    }
    for (const v of src.inputs) {
      if (src.initializers.has(v.name) || part.internalInputs?.has(v.name)) continue;
      const renamed: ValueInfo = { ...v, name: m(v.name), ...(v.shape ? { shape: [...v.shape] } : {}) };
      const prior = g.inputs.find((x) => x.name === renamed.name);
      if (prior) {
        if (prior.dtype !== renamed.dtype)
          throw new DiffusionError('BAD_MODEL', `merged input ${renamed.name} has element types ${prior.dtype} and ${renamed.dtype} in different models`);
        continue;
      }
      g.inputs.push(renamed);
    }
  }
  const first = parts[0]!.model;
  return {
    irVersion: Math.max(...parts.map((p) => p.model.irVersion)),
    opsetImports: mergedOpsets(parts),
    producerName: 'dynasyn',
    producerVersion: '0.1.0',
    graph: g,
    metadata: {},
    extra: first.extra.domain !== undefined ? { domain: first.extra.domain } : {},
  };
}

/** The first output of `model` named `preferred`, else its first output that is none of `exclude`. */
export function outputName(model: OnnxModel, preferred: string, exclude: string[] = []): string {
  const outs = model.graph.outputs.map((v) => v.name);
  if (outs.includes(preferred)) return preferred;
  const other = outs.find((o) => !exclude.includes(o));
  if (!other) throw new DiffusionError('BAD_MODEL', `${model.graph.name} has no output ${preferred} (outputs: ${outs.join(', ') || 'none'})`);
  return other;
}

/** The input of `model` named one of `names`, with a clear error when there is none. */
export function findInput(model: OnnxModel, names: string[], what: string): ValueInfo {
  const v = model.graph.inputs.find((x) => names.includes(x.name));
  if (!v) throw new DiffusionError('BAD_MODEL', `${what} has no input ${names.join(' / ')} (inputs: ${model.graph.inputs.map((x) => x.name).join(', ')})`);
  return v;
}
