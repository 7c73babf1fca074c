/**
 * The training graph of one phase (METHOD.md "Losses", "Two phases"): text encoder with placeholder rows ->
 * UNet with cross-attention capture -> loss subgraph, at batch 2 (row 0 the reference image, row 1 one
 * augmented image) or 1 (one of the two rows per pass). The trainer hands it to ort-training's TrainingSession:
 *
 *   const t = buildTrainingModel(bundle, { numPlaceholders: 2, baseVocabSize: tok.vocabSize, phase: 1 });
 *   const s = await TrainingSession.create({ model: t.model, loss: t.outputs.loss, trainable: t.trainable,
 *     keepOutputs: [t.outputs.md, t.outputs.m2a, t.outputs.ica, t.outputs.aug, t.outputs.attention] });
 *   for (const [name, v] of t.startValues) s.setTrainable(name, v);
 *
 * Trainables that are new tensors (placeholder rows, adapters) are graph inputs, so the derived graph (and
 * its cache entry) does not depend on their values; `startValues` holds them. 'full' mode trains existing
 * weights, which stay initializers: the session takes their start values from the model.
 */
import { DataType, loadModel, toNumbers, type Graph, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import {
  DiffusionError,
  PLACEHOLDER_INPUT,
  textEncoderModel,
  withFloat32Compute,
  placeholderStartValues,
  withPlaceholderEmbeddings,
  type ModelBundle,
} from '@dynasyn/diffusion';
import type { AdapterOptions, AdapterSpec } from '../types.js';
import { addTrainableAdapters } from './adapters.js';
import { composeEncoderUnet, COMPOSED_NAMES, type TensorSpec } from './encoder-unet.js';
import { appendLossSubgraph, LOSS_INPUTS, LOSS_OUTPUTS } from './losses.js';

export interface TrainingModelOptions {
  /** Placeholder token rows P (ids baseVocabSize..baseVocabSize+P-1). */
  numPlaceholders: number;
  /** Subject slots K of the loss inputs (default P). */
  maxSubjects?: number;
  /** Rows of the tokenizer's base vocabulary (ClipTokenizer.vocabSize). */
  baseVocabSize: number;
  phase: 1 | 2;
  /** Phase 2 only (default: LoRA rank 4 on UNet and text encoder). */
  adapters?: AdapterOptions;
  /** Attention grid [gh, gw] (default latent/4). */
  grid?: [number, number];
  /** Normalise A(c) by its max in L_ICA / L_AUG (default true, METHOD.md). */
  icaNormalizeBoth?: boolean;
  /**
   * Batch rows: 2 (reference + augmented, default), or 1: one row per pass, in either part (half the
   * activations; the trainer adds the two passes' gradients, which equal the batch-2 step's).
   */
  batch?: 1 | 2;
  /** Start rows of the placeholders: embedding rows of these token ids (class words' first sub-tokens); default zeros. */
  placeholderTokenIds?: number[];
  /** Seed of the adapters' A init (default 0). */
  seed?: number;
  /**
   * Compute A(c_hat) in the training graph, in a frozen branch that shares the weights (default; one session
   * holds the weights once). 'full' mode changes the weights themselves, so it always feeds the targets from
   * a separate frozen model instead.
   */
  frozenInGraph?: boolean;
}

export const DEFAULT_ADAPTERS: AdapterOptions = { mode: 'lora', rank: 4, targets: ['unet', 'text_encoder'] };

/** Every host-fed input of the training graph (names as in the issue: LOSS_INPUTS plus the model inputs). */
export interface TrainingInputs {
  inputIds: TensorSpec;
  noisyLatents: TensorSpec;
  timestep: TensorSpec;
  target: TensorSpec;
  mdMask: TensorSpec;
  tokenSelect: TensorSpec;
  m2aTarget: TensorSpec;
  /** Fed targets (without the frozen branch) ... */
  icaTarget?: TensorSpec;
  augTarget?: TensorSpec;
  /** ... or what the frozen branch needs to compute them (frozenInGraph). */
  classInputIds?: TensorSpec;
  classSelect?: TensorSpec;
  augMask?: TensorSpec;
  m2aWeight: TensorSpec;
  icaWeight: TensorSpec;
  augWeight: TensorSpec;
  lambdas: TensorSpec;
}

export interface TrainingModel {
  model: OnnxModel;
  /** Tensors to train: `placeholder_embeddings`, then adapters' A/B (lora) or chosen weights (full). */
  trainable: string[];
  /** Start values of the trainables that are graph inputs (set them with TrainingSession.setTrainable). */
  startValues: Map<string, HostTensor>;
  inputs: TrainingInputs;
  outputs: typeof LOSS_OUTPUTS;
  /** LoRA placement (empty in phase 1 and 'full' mode); weights named as in the bundle's own models. */
  adapters: AdapterSpec[];
  /** What the graph does differently from what was asked (a model that cannot take adapters), for the run's manifest. */
  notes: string[];
  grid: [number, number];
  /** The UNet takes a timestep per row (a batch-2 step feeds two), not one for the whole batch. */
  timestepPerRow: boolean;
}

/** Start rows [P, D]: the rows of `ids` (padded with zeros to P rows), else all zeros. */
function placeholderStart(textEncoder: OnnxModel, P: number, D: number, V: number, ids?: number[]): HostTensor {
  const out: HostTensor = { dtype: 1, dims: [P, D], data: new Float32Array(P * D) };
  if (!ids?.length) return out;
  if (ids.length > P) throw new DiffusionError('BAD_ARGUMENT', `${ids.length} placeholder start token ids for ${P} placeholders`);
  const rows = placeholderStartValues(textEncoder, ids, { baseVocabSize: V });
  if (rows.dtype !== DataType.FLOAT && rows.dtype !== DataType.FLOAT16)
    throw new DiffusionError('UNSUPPORTED', `the token-embedding table has ONNX type ${rows.dtype}; training needs float32 or float16`);
  // a float16 table (fp16 export): the training graph computes in float32 (withFloat32Compute)
  (out.data as Float32Array).set(rows.dtype === DataType.FLOAT ? (rows.data as Float32Array) : toNumbers(rows));
  return out;
}

/**
 * One Cast per float16 weight: the live and the frozen branch each read a shared weight through their own
 * Cast(W, float), which onnxruntime would fold into two float32 copies; the second reads the first's output.
 */
function shareWeightCasts(g: Graph): void {
  const first = new Map<string, string>();
  const renamed = new Map<string, string>();
  g.nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Cast' || !g.initializers.has(n.inputs[0]!)) return true;
    const key = `${n.inputs[0]}->${String(n.attributes.find((a) => a.name === 'to')?.i)}`;
    const kept = first.get(key);
    if (kept === undefined) {
      first.set(key, n.outputs[0]!);
      return true;
    }
    renamed.set(n.outputs[0]!, kept);
    return false;
  });
  if (renamed.size) for (const n of g.nodes) n.inputs = n.inputs.map((x) => renamed.get(x) ?? x);
}

/** `full` mode: initializers of the merged graph whose merged or original name matches a pattern. */
function fullTrainables(model: OnnxModel, patterns: string[]): string[] {
  const names = [...model.graph.initializers.keys()];
  const original = (n: string) => n.replace(/^(text_encoder|unet)\//, '');
  const chosen: string[] = [];
  for (const p of patterns) {
    const re = /^\/(.*)\/([a-z]*)$/.exec(p);
    const test = re ? (n: string) => new RegExp(re[1]!, re[2]).test(n) : (n: string) => n === p;
    const hits = names.filter((n) => test(n) || test(original(n)));
    if (hits.length === 0) throw new DiffusionError('BAD_ARGUMENT', `full-mode tensor ${p} matches no weight of the text encoder or UNet`);
    for (const h of hits) if (!chosen.includes(h)) chosen.push(h);
  }
  return chosen;
}

export function buildTrainingModel(bundle: ModelBundle, options: TrainingModelOptions): TrainingModel {
  const P = options.numPlaceholders;
  const K = options.maxSubjects ?? P;
  const batch = options.batch ?? 2;
  if (batch !== 1 && batch !== 2)
    throw new DiffusionError(
      'BAD_ARGUMENT',
      `the training graph has batch 2 (reference + augmented row) or 1 (one row per pass), got ${String(options.batch)}`,
    );
  if (!Number.isInteger(K) || K < 1) throw new DiffusionError('BAD_ARGUMENT', `maxSubjects must be a positive integer, got ${K}`);
  const adapterOpts = options.adapters ?? DEFAULT_ADAPTERS;
  const original = textEncoderModel(bundle);
  let textEncoder = withPlaceholderEmbeddings(original, { numPlaceholders: P, baseVocabSize: options.baseVocabSize }).model;
  const originalUnet = loadModel(bundle.unetPath);
  let unet = originalUnet;
  const frozenInGraph = (options.frozenInGraph ?? true) && !(options.phase === 2 && adapterOpts.mode === 'full');
  const D = bundle.textEmbedDim;

  const startValues = new Map<string, HostTensor>([[PLACEHOLDER_INPUT, placeholderStart(original, P, D, options.baseVocabSize, options.placeholderTokenIds)]]);
  const adapters: AdapterSpec[] = [];
  const notes: string[] = [];
  if (options.phase === 2 && adapterOpts.mode === 'lora') {
    const add = { rank: adapterOpts.rank, ...(adapterOpts.alpha !== undefined ? { alpha: adapterOpts.alpha } : {}), seed: options.seed ?? 0 };
    for (const which of adapterOpts.targets) {
      const adapted = addTrainableAdapters(which === 'unet' ? unet : textEncoder, which, add);
      if (adapted.specs.length === 0) {
        notes.push(
          `no attention projection found in the ${which} graph (no MatMul/Gemm named to_q/q_proj/..., none with a constant weight around a Softmax): phase 2 trains no adapters in the ${which}`,
        );
        continue;
      }
      if (which === 'unet') unet = adapted.model;
      else textEncoder = adapted.model;
      adapters.push(...adapted.specs);
      for (const [k, v] of adapted.startValues) startValues.set(k, v);
    }
  }
  const keep = new Set([PLACEHOLDER_INPUT, ...adapters.flatMap((s) => [s.a, s.b])]);
  // float16 exports train in float32 (weights stay float16, read through Casts): surgery/precision.ts
  const composed = composeEncoderUnet(bundle, withFloat32Compute(textEncoder), withFloat32Compute(unet), {
    batch,
    keep,
    ...(options.grid ? { grid: options.grid } : {}),
    ...(frozenInGraph ? { frozen: { textEncoder: withFloat32Compute(original), unet: withFloat32Compute(originalUnet) } } : {}),
  });
  shareWeightCasts(composed.model.graph);
  const { model, types } = composed;
  const g = model.graph;
  g.outputs = [];
  appendLossSubgraph(g, composed.opset, types, {
    prediction: COMPOSED_NAMES.prediction,
    attentionProbs: COMPOSED_NAMES.attentionProbs,
    maxSubjects: K,
    icaNormalizeBoth: options.icaNormalizeBoth ?? true,
    ...(frozenInGraph ? { classAttentionProbs: COMPOSED_NAMES.classAttentionProbs } : {}),
  });
  g.removeDeadNodes();
  g.sortTopologically();

  const trainable = [...startValues.keys()];
  if (options.phase === 2 && adapterOpts.mode === 'full') {
    if (!adapterOpts.fullTensors?.length)
      throw new DiffusionError('BAD_ARGUMENT', "adapters.mode 'full' needs fullTensors (initializer names or /regex/ strings)");
    trainable.push(...fullTrainables(model, adapterOpts.fullTensors));
  }
  const spec = (name: string) => ({ name, dtype: g.inputs.find((v) => v.name === name)!.dtype, dims: [...types.get(name)!.dims] });
  const I = LOSS_INPUTS;
  return {
    model,
    trainable,
    startValues,
    adapters,
    notes,
    grid: composed.grid,
    timestepPerRow: composed.timestepPerRow,
    outputs: LOSS_OUTPUTS,
    inputs: {
      ...composed.inputs,
      target: spec(I.target),
      mdMask: spec(I.mdMask),
      tokenSelect: spec(I.tokenSelect),
      m2aTarget: spec(I.m2aTarget),
      ...(frozenInGraph ? { classSelect: spec(I.classSelect), augMask: spec(I.augMask) } : { icaTarget: spec(I.icaTarget), augTarget: spec(I.augTarget) }),
      m2aWeight: spec(I.m2aWeight),
      icaWeight: spec(I.icaWeight),
      augWeight: spec(I.augWeight),
      lambdas: spec(I.lambdas),
    },
  };
}
