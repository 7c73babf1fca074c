/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", Algorithm 2) on host tensors, with
 * PyTorch's semantics so that hyper-parameters carry over:
 *
 *   g   <- g * min(1, maxGradNorm / (||g||_global + 1e-6))        (torch.nn.utils.clip_grad_norm_)
 *   p   <- p * (1 - lr * weightDecay)                              (decoupled decay)
 *   m   <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p   <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *
 * Moments are kept in float64 whatever the parameter type, and all state (moments, per-tensor step counts,
 * parameter values) is saved bit-exactly, so a run resumed from a checkpoint continues exactly.
 */
import { OrtTrainingError } from './errors.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { DataType, dataTypeName, numel, type HostTensor } from './tensor.js';

export interface AdamWOptions {
  /** Learning rate, or a schedule giving it for the 1-based number of the update about to be applied. */
  lr: number | ((step: number) => number);
  /** Decay rates of the first and second moment estimates (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay coefficient (default 0.01, as torch.optim.AdamW). */
  weightDecay?: number;
  /** Clip gradients to this global L2 norm over all tensors (default: no clipping). */
  maxGradNorm?: number;
}

export interface TensorState {
  m: Float64Array;
  v: Float64Array;
  /** Updates applied to this tensor (its bias correction; a tensor may miss steps). */
  step: number;
}

export interface AdamWState {
  /** Updates applied by this optimizer (what an lr schedule sees). */
  step: number;
  tensors: Map<string, TensorState>;
}

export interface OptimizerStepInfo {
  /** The number of the update just applied (unchanged when skipped). */
  step: number;
  lr: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Factor the gradients were scaled by (1 when not clipped). */
  clipScale: number;
  /** True when the gradients held a NaN or infinity: nothing was updated. */
  skipped: boolean;
}

type FloatData = Float32Array | Float64Array;

function floatData(t: HostTensor, what: string): FloatData {
  if (t.dtype !== DataType.FLOAT && t.dtype !== DataType.DOUBLE) {
    throw new OrtTrainingError('UNSUPPORTED_DTYPE', `AdamW updates float and double tensors; ${what} is ${dataTypeName(t.dtype)}`);
  }
  return t.data as FloatData;
}

export class AdamW {
  readonly options: Required<Omit<AdamWOptions, 'maxGradNorm'>> & Pick<AdamWOptions, 'maxGradNorm'>;
  private stepCount = 0;
  private tensors = new Map<string, TensorState>();

  constructor(options: AdamWOptions) {
    this.options = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, ...options };
    const [b1, b2] = this.options.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new OrtTrainingError('BAD_ARGUMENT', `AdamW betas must lie in [0, 1), got [${b1}, ${b2}]`);
    if (this.options.maxGradNorm !== undefined && !(this.options.maxGradNorm > 0)) {
      throw new OrtTrainingError('BAD_ARGUMENT', `maxGradNorm must be positive, got ${this.options.maxGradNorm}`);
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /** Learning rate of update number `step` (1-based). */
  lrAt(step: number): number {
    const lr = this.options.lr;
    return typeof lr === 'function' ? lr(step) : lr;
  }

  /**
   * Apply one update to `params` in place from `grads` (same names, dtypes and shapes). Tensors without a
   * gradient are left alone. Gradients are not modified (clipping scales on the fly).
   */
  update(params: Map<string, HostTensor>, grads: Map<string, HostTensor>): OptimizerStepInfo {
    const pairs: [string, FloatData, FloatData][] = [];
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p) throw new OrtTrainingError('UNKNOWN_TENSOR', `AdamW: gradient for ${name}, which is not a trainable tensor`);
      if (p.dtype !== g.dtype || numel(p.dims) !== numel(g.dims)) {
        throw new OrtTrainingError(
          'BAD_ARGUMENT',
          `AdamW: gradient of ${name} is ${dataTypeName(g.dtype)}[${g.dims}], the tensor is ${dataTypeName(p.dtype)}[${p.dims}]`,
        );
      }
      pairs.push([name, floatData(p, name), floatData(g, `the gradient of ${name}`)]);
    }

    let sq = 0;
    for (const [, , g] of pairs) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
    const gradNorm = Math.sqrt(sq);
    const next = this.stepCount + 1;
    const lr = this.lrAt(next);
    if (!Number.isFinite(gradNorm)) return { step: this.stepCount, lr, gradNorm, clipScale: 1, skipped: true };
    const max = this.options.maxGradNorm;
    const clipScale = max !== undefined ? Math.min(1, max / (gradNorm + 1e-6)) : 1;

    const {
      betas: [b1, b2],
      eps,
      weightDecay,
    } = this.options;
    const decay = 1 - lr * weightDecay;
    for (const [name, p, g] of pairs) {
      let s = this.tensors.get(name);
      if (!s) this.tensors.set(name, (s = { m: new Float64Array(p.length), v: new Float64Array(p.length), step: 0 }));
      s.step++;
      // torch.optim.AdamW's own arrangement: p -= (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps)
      const stepSize = lr / (1 - b1 ** s.step),
        sqrtC2 = Math.sqrt(1 - b2 ** s.step);
      adamwKernel(p, g, s.m, s.v, clipScale, b1, b2, decay, stepSize, sqrtC2, eps);
    }
    this.stepCount = next;
    return { step: next, lr, gradNorm, clipScale, skipped: false };
  }

  /** A deep copy of the optimizer state. */
  state(): AdamWState {
    return { step: this.stepCount, tensors: new Map([...this.tensors].map(([k, s]) => [k, { m: s.m.slice(), v: s.v.slice(), step: s.step }])) };
  }

  loadState(state: AdamWState): void {
    this.stepCount = state.step;
    this.tensors = new Map([...state.tensors].map(([k, s]) => [k, { m: s.m.slice(), v: s.v.slice(), step: s.step }]));
  }
}

/** One tensor's update in place; a plain loop over typed arrays that V8 compiles to tight machine code. */
function adamwKernel(
  p: FloatData,
  g: FloatData,
  m: Float64Array,
  v: Float64Array,
  clipScale: number,
  b1: number,
  b2: number,
  decay: number,
  stepSize: number,
  sqrtC2: number,
  eps: number,
): void {
  const a1 = 1 - b1,
    a2 = 1 - b2,
    n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * clipScale;
    const mi = b1 * m[i]! + a1 * gi;
    const vi = b2 * v[i]! + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtC2 + eps);
  }
}

/** What a checkpoint needs from a training session (TrainingSession implements it). */
export interface TrainableStore {
  readonly trainableNames: readonly string[];
  getTrainable(name: string): HostTensor;
  setTrainable(name: string, value: HostTensor): void;
}

const FORMAT = 'ort-training/adamw-checkpoint/1';

/**
 * Save the trainable values and the optimizer state to one safetensors file (atomically). Tensors are
 * `trainable/<name>`, `adamw.m/<name>`, `adamw.v/<name>`; step counts go in the metadata.
 */
export function saveCheckpoint(file: string, store: TrainableStore, optimizer: AdamW, metadata: Record<string, string> = {}): void {
  const tensors = new Map<string, HostTensor>();
  for (const name of store.trainableNames) tensors.set(`trainable/${name}`, store.getTrainable(name));
  const st = optimizer.state();
  const steps: Record<string, number> = {};
  for (const [name, s] of st.tensors) {
    tensors.set(`adamw.m/${name}`, { dtype: DataType.DOUBLE, dims: [s.m.length], data: s.m });
    tensors.set(`adamw.v/${name}`, { dtype: DataType.DOUBLE, dims: [s.v.length], data: s.v });
    steps[name] = s.step;
  }
  writeSafetensors(file, tensors, { ...metadata, format: FORMAT, step: String(st.step), tensorSteps: JSON.stringify(steps) });
}

/** Restore what `saveCheckpoint` wrote; returns the file's metadata. */
export function loadCheckpoint(file: string, store: TrainableStore, optimizer: AdamW): Record<string, string> {
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== FORMAT)
    throw new OrtTrainingError('BAD_STATE', `${file} is not an ort-training AdamW checkpoint (format ${metadata.format ?? 'missing'})`);
  for (const name of store.trainableNames) {
    const t = tensors.get(`trainable/${name}`);
    if (!t) throw new OrtTrainingError('BAD_STATE', `checkpoint ${file} holds no value for trainable tensor ${name}`);
    store.setTrainable(name, t);
  }
  const steps = JSON.parse(metadata.tensorSteps ?? '{}') as Record<string, number>;
  const state: AdamWState = { step: Number(metadata.step), tensors: new Map() };
  for (const [name, step] of Object.entries(steps)) {
    const m = tensors.get(`adamw.m/${name}`),
      v = tensors.get(`adamw.v/${name}`);
    if (!m || !v) throw new OrtTrainingError('BAD_STATE', `checkpoint ${file} lacks the moments of ${name}`);
    state.tensors.set(name, { m: m.data as Float64Array, v: v.data as Float64Array, step });
  }
  optimizer.loadState(state);
  return metadata;
}
