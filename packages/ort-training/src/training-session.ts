/**
 * A training loop's view of a model: derive (or fetch from the cache) the training graph, hold the current
 * values of the trainable tensors on the host, feed them each step and hand back loss and gradients.
 * Frozen weights stay initializers of the training graph, so on CUDA they live on the device and only the
 * (small) trainable tensors and their gradients cross each step.
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import { deriveGradientGraph, type DeriveOptions } from './autodiff.js';
import { cacheKey, cachedEntry, defaultCacheDir } from './cache.js';
import { OrtTrainingError } from './errors.js';
import { initializerToHost } from './graph.js';
import { parseModel, readExternal, saveModel, type OnnxModel } from './model.js';
import { asOrtTensor, createSession, viewOrtTensor, type ExecutionProvider } from './ort.js';
import type { AdamW, OptimizerStepInfo, TrainableStore } from './optimizer.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { dataTypeName, numel, toNumbers, type HostTensor } from './tensor.js';

export interface TrainingSessionOptions {
  /** An .onnx file (external data beside it) or a model already in memory. */
  model: string | OnnxModel;
  /** Name of the scalar loss tensor. */
  loss: string;
  /** Initializers (start value: their value) or graph inputs (set with setTrainable) to train. */
  trainable: string[];
  /** Concrete shapes for graph inputs with symbolic dimensions. */
  inputShapes?: Record<string, number[]>;
  /** Further tensors returned by each step (e.g. loss terms to log). */
  keepOutputs?: string[];
  /** Recompute Softmax outputs of at least this many bytes in the backward pass instead of keeping them (DeriveOptions). */
  recomputeAbove?: number;
  /** Compute attention in blocks of queries whose probabilities take less than this many bytes (DeriveOptions). */
  chunkAttentionAbove?: number;
  /** Default ['cpu']; 'cuda' needs onnxruntime-node's CUDA provider installed. */
  executionProviders?: ExecutionProvider[];
  /** Where derived graphs are cached (default `$XDG_CACHE_HOME/dynasyn/ort-training`). */
  cacheDir?: string;
  /** Passed to onnxruntime (intraOpNumThreads, graphOptimizationLevel, ...). */
  sessionOptions?: Omit<ortTypes.InferenceSession.SessionOptions, 'executionProviders'>;
}

export type Feed = HostTensor | ortTypes.Tensor;

export interface StepResult {
  loss: number;
  /** Gradient of the loss for each trainable tensor, by the trainable's name. */
  grads: Map<string, HostTensor>;
  /** The keepOutputs tensors. */
  outputs: Map<string, HostTensor>;
}

interface Meta {
  loss: string;
  trainable: string[];
  gradientOutputs: Record<string, string>;
  keepOutputs: string[];
  inputs: { name: string; dtype: number; dims: number[] }[];
}

export class TrainingSession implements TrainableStore {
  private lastGrads: Map<string, HostTensor> | undefined;

  private constructor(
    private readonly session: ortTypes.InferenceSession,
    private readonly meta: Meta,
    private readonly values: Map<string, HostTensor>,
    /** Directory of the cached training graph (model.onnx inside). */
    readonly cacheEntry: string,
  ) {}

  /**
   * Derive the training graph into the cache (or find it there) without opening an onnxruntime session:
   * a run checks every graph it will need before its first step. Returns the cache entry's directory.
   */
  static async prepare(options: Omit<TrainingSessionOptions, 'executionProviders' | 'sessionOptions'>): Promise<string> {
    const { model, bytes } = loadInput(options.model);
    const derive: DeriveOptions = {
      loss: options.loss,
      wrt: options.trainable,
      ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
      ...(options.keepOutputs ? { keepOutputs: options.keepOutputs } : {}),
      ...(options.recomputeAbove !== undefined ? { recomputeAbove: options.recomputeAbove } : {}),
      ...(options.chunkAttentionAbove !== undefined ? { chunkAttentionAbove: options.chunkAttentionAbove } : {}),
    };
    const key = cacheKey({ model, options: derive, ...(bytes ? { modelBytes: bytes } : {}) });
    return cachedEntry(options.cacheDir ?? defaultCacheDir(), key, (tmp) => buildEntry(tmp, model, derive));
  }

  static async create(options: TrainingSessionOptions): Promise<TrainingSession> {
    const dir = await TrainingSession.prepare(options);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
    const values = new Map<string, HostTensor>();
    for (const [name, t] of readSafetensors(path.join(dir, 'trainables.safetensors')).tensors) values.set(name, copy(t));
    const session = await createSession(path.join(dir, 'model.onnx'), options.executionProviders ?? ['cpu'], options.sessionOptions);
    return new TrainingSession(session, meta, values, dir);
  }

  get trainableNames(): readonly string[] {
    return this.meta.trainable;
  }
  get lossName(): string {
    return this.meta.loss;
  }
  /** Graph inputs a step must be fed (the trainables are fed by the session). */
  get inputNames(): string[] {
    return this.meta.inputs.map((i) => i.name).filter((n) => !this.meta.trainable.includes(n));
  }

  /** A copy of the current value of a trainable tensor. */
  getTrainable(name: string): HostTensor {
    const t = this.values.get(name);
    if (!t) {
      if (this.meta.trainable.includes(name)) throw new OrtTrainingError('BAD_STATE', `trainable input ${name} has no value yet: set it with setTrainable`);
      throw new OrtTrainingError('UNKNOWN_TENSOR', `${name} is not a trainable tensor (trainable: ${this.meta.trainable.join(', ')})`);
    }
    return copy(t);
  }

  /**
   * The live value of a trainable tensor, not a copy: the next step reads what is written into its data (an
   * optimizer updating in place, as applyGradients does). Its dtype and shape are fixed; to replace the
   * tensor, use setTrainable (after which this reference is stale: ask again).
   */
  trainableRef(name: string): HostTensor {
    const t = this.values.get(name);
    if (!t) return this.getTrainable(name); // throws the reason
    return t;
  }

  /** Replace the value of a trainable tensor (same dtype and shape; copied). */
  setTrainable(name: string, value: HostTensor): void {
    const spec = this.meta.inputs.find((i) => i.name === name);
    if (!spec || !this.meta.trainable.includes(name))
      throw new OrtTrainingError('UNKNOWN_TENSOR', `${name} is not a trainable tensor (trainable: ${this.meta.trainable.join(', ')})`);
    if (value.dtype !== spec.dtype || value.dims.length !== spec.dims.length || value.dims.some((d, i) => d !== spec.dims[i])) {
      throw new OrtTrainingError(
        'BAD_ARGUMENT',
        `trainable ${name} is ${dataTypeName(spec.dtype)}[${spec.dims}], got ${dataTypeName(value.dtype)}[${value.dims}]`,
      );
    }
    this.values.set(name, copy(value));
  }

  /** Forward and backward pass: loss, gradients for every trainable, and the kept outputs. Changes nothing. */
  async step(feeds: Record<string, Feed>): Promise<StepResult> {
    const { meta } = this;
    const ortFeeds: Record<string, ortTypes.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      if (meta.trainable.includes(name))
        throw new OrtTrainingError('BAD_ARGUMENT', `${name} is trainable: its value comes from the session (use setTrainable)`);
      if (!meta.inputs.some((i) => i.name === name))
        throw new OrtTrainingError('UNKNOWN_TENSOR', `feed ${name} is not an input of the training graph (inputs: ${this.inputNames.join(', ')})`);
      ortFeeds[name] = asOrtTensor(t);
    }
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new OrtTrainingError('BAD_ARGUMENT', `step needs a value for input ${missing.join(', ')}`);
    for (const name of meta.trainable) ortFeeds[name] = asOrtTensor(this.values.get(name) ?? this.getTrainable(name));

    const out = await this.session.run(ortFeeds);
    const host = (name: string): HostTensor => viewOrtTensor(out[name]!);
    const lossTensor = host(meta.loss);
    const grads = new Map(meta.trainable.map((t) => [t, host(meta.gradientOutputs[t]!)]));
    const outputs = new Map(meta.keepOutputs.map((k) => [k, host(k)]));
    this.lastGrads = grads;
    return { loss: toNumbers(lossTensor)[0]!, grads, outputs };
  }

  /** Update the trainables with the optimizer, from `grads` or else the last step's gradients. */
  applyGradients(optimizer: AdamW, grads?: Map<string, HostTensor>): OptimizerStepInfo {
    const g = grads ?? this.lastGrads;
    if (!g) throw new OrtTrainingError('BAD_STATE', 'applyGradients before any step: there are no gradients');
    this.lastGrads = undefined;
    return optimizer.update(this.values, g);
  }

  /** step + applyGradients. */
  async trainStep(feeds: Record<string, Feed>, optimizer: AdamW): Promise<StepResult & { update: OptimizerStepInfo }> {
    const r = await this.step(feeds);
    return { ...r, update: this.applyGradients(optimizer, r.grads) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

const copy = (t: HostTensor): HostTensor => ({ dtype: t.dtype, dims: [...t.dims], data: t.data.slice() });

function loadInput(model: string | OnnxModel): { model: OnnxModel; bytes?: Uint8Array } {
  if (typeof model !== 'string') return { model };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(model);
  } catch (e) {
    throw new OrtTrainingError('BAD_ARGUMENT', `cannot read model ${model}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { model: parseModel(bytes, path.dirname(path.resolve(model)), model), bytes };
}

/** Write one cache entry: training graph, start values of the trainables, meta.json (written last). */
function buildEntry(dir: string, model: OnnxModel, options: DeriveOptions): void {
  const derived = deriveGradientGraph(model, options);
  saveModel(derived.model, path.join(dir, 'model.onnx'));
  const start = new Map<string, HostTensor>();
  for (const name of options.wrt) {
    const init = model.graph.initializers.get(name);
    if (init) start.set(name, initializerToHost(init, readExternal));
  }
  writeSafetensors(path.join(dir, 'trainables.safetensors'), start);
  const g = derived.model.graph;
  const meta: Meta = {
    loss: options.loss,
    trainable: [...options.wrt],
    gradientOutputs: derived.gradientOutputs,
    keepOutputs: (options.keepOutputs ?? []).filter((k) => k !== options.loss),
    inputs: g.inputs.map((v) => ({ name: v.name, dtype: v.dtype, dims: (v.shape ?? []).map(Number) })),
  };
  if (meta.inputs.some((i) => i.dims.some((d) => !Number.isFinite(d)) || numel(i.dims) < 0)) {
    throw new OrtTrainingError('BAD_STATE', 'the training graph has an input without a concrete shape');
  }
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 1));
}
