/**
 * One training step's feeds (METHOD.md "Losses"): batch row 0 is the reference image (L_MD, L_M2A, L_ICA),
 * row 1 one augmented image drawn in turn (L_AUG). Everything that needs no gradient is computed here:
 * noise, noisy latents, the target, masks at the latent and attention grids, the placeholder positions
 * (`token_select`) and the frozen model's class-prompt maps turned into g(M * A(c_hat)).
 *
 * Choices METHOD.md leaves open:
 * - z0 is the VAE posterior mean, encoded once at setup (per flip state for the reference; Break-a-Scene
 *   samples the posterior each step; with SD's VAE the spread is small next to the diffusion noise).
 * - The augmented row draws its OWN t and noise (independent of row 0): the two rows are different
 *   images, and independent timesteps cover the schedule twice as fast. Augmented images are not flipped.
 * - Without an augmented set, row 1 repeats row 0's inputs with aug_weight = 0 (the graph has batch 2).
 * Randomness: labelled forks of the step's generator (`union`, `t`, `noise`, `aug-t`, `aug-noise`), so
 * every draw is a function of (seed, phase, step) alone.
 */
import { type ClipTokenizer, type GaussianRng, type Scheduler } from '@dynasyn/diffusion';
import { resizeMask } from '@dynasyn/imaging';
import { DataType, fromNumbers, type HostTensor } from '@dynasyn/ort-training';
import type { AugmentedExample, LossWeights, Mask, Subject } from '../types.js';
import { classMapTarget } from '../graph/index.js';
import { promptTokens, type PromptTokens } from './prompts.js';
import { sampleUnion, type SubjectsPerStep, type UnionSample } from './union.js';
import { TrainingError } from './errors.js';

/** Runs the frozen original model on class prompts: ids [2*T] (row-major), z_t [2*C*h*w], t [2] -> A(c_hat) [2,hw,T]. */
export type ClassMapRunner = (classIds: Int32Array, noisyLatents: Float32Array, timesteps: [number, number]) => Promise<Float32Array>;

/** What stays fixed over a run. */
export interface BatchSetup {
  subjects: readonly Subject[];
  /** Tokenizer with `<asset0>..<asset{N-1}>` added. */
  tokenizer: ClipTokenizer;
  /** DDPM scheduler of the bundle (addNoise, getVelocity, config). */
  scheduler: Scheduler;
  /** Latents [C,h,w] per example. */
  latentShape: [number, number, number];
  /** Attention grid [gh, gw]. */
  grid: [number, number];
  /** Subject slots K of the training graph (>= subjects.length). */
  slots: number;
  maxTokens: number;
  /** Reference latents z0 [C*h*w], unflipped and flipped. */
  reference: { plain: Float32Array; flipped: Float32Array };
  augmented: readonly { example: AugmentedExample; latents: Float32Array }[];
  lambdas: LossWeights;
  flipProbability: number;
  /** Subjects named per step (TrainOptions.subjectsPerStep); default `union`. */
  subjectsPerStep?: SubjectsPerStep;
  /** L_MD under M_s (default true); false: over the whole image (TrainOptions.maskedDiffusion). */
  maskedDiffusion?: boolean;
  /**
   * The augmented set is a class-prior set (TrainOptions.priorPreservation): row 1's md_mask is all ones, so
   * L_MD adds DreamBooth's prior-preservation term on it (its prompt names no placeholder: no L_AUG).
   */
  priorPreservation?: boolean;
  /**
   * The training graph computes A(c_hat) itself (its frozen branch): the feeds carry the class prompts
   * (`class_input_ids`, `class_select`, `aug_mask`) instead of targets made from a separate frozen model.
   */
  frozenInGraph: boolean;
  /** Element types of the graph inputs `input_ids`, `timestep` and `noisy_latents` (ONNX DataType). */
  idsType: number;
  timestepType: number;
  /**
   * Shape of the `timestep` input: [2] (a timestep per row, default), or [1] / [] for a UNet exported with one
   * timestep for the whole batch; then the augmented row is noised at row 0's t.
   */
  timestepDims?: number[];
  latentType: number;
}

/** A step's feeds, and what was drawn (for logs and tests). */
export interface StepBatch {
  feeds: Record<string, HostTensor>;
  union: UnionSample;
  /** Index of the augmented example in row 1, or undefined without an augmented set. */
  augIndex: number | undefined;
  timesteps: [number, number];
  reference: PromptTokens;
  aug: PromptTokens | undefined;
}

/** A mask at `w` x `h` (nearest) as 0/1 floats. */
export function maskAt(mask: Mask, w: number, h: number): Float32Array {
  return Float32Array.from(resizeMask(mask, w, h).data);
}

/** The (t, eps, z_t, target) of one row: DDPM add_noise and the scheduler's prediction target. */
function noised(scheduler: Scheduler, z0: Float32Array, t: number, eps: Float32Array): { zt: Float32Array; target: Float32Array } {
  const zt = scheduler.addNoise(z0, eps, t);
  const kind = scheduler.config.predictionType;
  const target = kind === 'v_prediction' ? scheduler.getVelocity(z0, eps, t) : kind === 'epsilon' ? eps : z0;
  return { zt, target };
}

const concat = (a: Float32Array, b: Float32Array): Float32Array => {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: DataType.FLOAT, dims, data });

/** What a step drew: the union, row 0's t and noise, and row 1's augmented example with its own t and noise. */
export interface StepDraw {
  union: UnionSample;
  t: number;
  noise: Float32Array;
  aug?: { index: number; t: number; noise: Float32Array };
}

/** The draws of a training step from `rng` (the step's own fork); `augIndex` is the example in turn. */
/** The UNet takes one timestep for the whole batch ([1] or a scalar). */
function oneTimestep(setup: Pick<BatchSetup, 'timestepDims'>): boolean {
  const d = setup.timestepDims;
  return d !== undefined && (d.length === 0 || d[0] === 1);
}

export function drawStep(setup: BatchSetup, rng: GaussianRng, augIndex: number | undefined): StepDraw {
  const T = setup.scheduler.config.numTrainTimesteps;
  const n = setup.latentShape.reduce((a, b) => a * b, 1);
  const union = sampleUnion(setup.subjects, rng.fork('union'), setup.flipProbability, {
    ...(setup.subjectsPerStep ? { subjectsPerStep: setup.subjectsPerStep } : {}),
    masked: setup.maskedDiffusion ?? true,
  });
  const draw: StepDraw = { union, t: rng.fork('t').uniformInt(T), noise: rng.fork('noise').fill(n) };
  if (augIndex !== undefined && setup.augmented.length > 0) {
    const t = rng.fork('aug-t').uniformInt(T);
    draw.aug = { index: augIndex % setup.augmented.length, t: oneTimestep(setup) ? draw.t : t, noise: rng.fork('aug-noise').fill(n) };
  }
  return draw;
}

/** The feeds of training step drawn as `rng` says: drawStep + buildBatch. */
export async function buildStepBatch(setup: BatchSetup, rng: GaussianRng, augIndex: number | undefined, classMaps?: ClassMapRunner): Promise<StepBatch> {
  return buildBatch(setup, drawStep(setup, rng, augIndex), classMaps);
}

/**
 * The feeds of one drawn step: noisy latents and targets, then the frozen class-prompt maps on the same z_t
 * and t (from `classMaps`, unless the training graph computes them: setup.frozenInGraph).
 */
export async function buildBatch(setup: BatchSetup, draw: StepDraw, classMaps?: ClassMapRunner): Promise<StepBatch> {
  const { union } = draw;
  const classWords = setup.subjects.map((s) => s.classWord);
  const ref = promptTokens(setup.tokenizer, union.prompt, classWords, setup.maxTokens);
  const t0 = draw.t;
  const row0 = noised(setup.scheduler, union.flip ? setup.reference.flipped : setup.reference.plain, t0, draw.noise);

  const augmented = draw.aug ? setup.augmented[draw.aug.index] : undefined;
  let aug: PromptTokens | undefined;
  let t1 = t0,
    row1 = row0;
  if (augmented && draw.aug) {
    aug = promptTokens(setup.tokenizer, augmented.example.prompt, classWords, setup.maxTokens);
    t1 = draw.aug.t;
    row1 = noised(setup.scheduler, augmented.latents, t1, draw.aug.noise);
  }

  const zt = concat(row0.zt, row1.zt);
  const classIds = new Int32Array(2 * setup.maxTokens);
  classIds.set(ref.classIds);
  classIds.set(aug?.classIds ?? ref.classIds, setup.maxTokens);
  let frozen: Float32Array | undefined;
  if (!setup.frozenInGraph) {
    if (!classMaps)
      throw new TrainingError('BAD_INPUT', 'the training graph takes its class-map targets as inputs: buildBatch needs the frozen class-map runner');
    frozen = await classMaps(classIds, zt, [t0, t1]);
  }

  const feeds = assembleFeeds(setup, {
    union,
    ref,
    aug,
    augmented: augmented?.example,
    zt,
    target: concat(row0.target, row1.target),
    timesteps: [t0, t1],
    classIds,
    frozen,
  });
  return { feeds, union, augIndex: augmented ? draw.aug!.index : undefined, timesteps: [t0, t1], reference: ref, aug };
}

interface Drawn {
  union: UnionSample;
  ref: PromptTokens;
  aug: PromptTokens | undefined;
  augmented: AugmentedExample | undefined;
  zt: Float32Array;
  target: Float32Array;
  timesteps: [number, number];
  /** Class prompts c_hat of both rows [2*T]. */
  classIds: Int32Array;
  /** A(c_hat) of both rows [2,hw,T], when a separate frozen model computed it (else the graph does). */
  frozen: Float32Array | undefined;
}

function assembleFeeds(setup: BatchSetup, d: Drawn): Record<string, HostTensor> {
  const [C, h, w] = setup.latentShape;
  const [gh, gw] = setup.grid;
  const hw = gh * gw,
    K = setup.slots,
    T = setup.maxTokens;

  const ids = new Int32Array(2 * T);
  ids.set(d.ref.ids);
  ids.set(d.aug?.ids ?? d.ref.ids, T);

  const mdMask = new Float32Array(2 * h * w);
  mdMask.set(maskAt(d.union.unionMask, w, h));
  if (setup.priorPreservation && d.augmented) mdMask.fill(1, h * w);

  const frozen = d.frozen && { dims: [2, hw, T], data: d.frozen };
  const tokenSelect = new Float32Array(2 * T * K),
    classSelect = new Float32Array(2 * T * K);
  const m2aTarget = new Float32Array(K * hw),
    icaTarget = new Float32Array(K * hw),
    augTarget = new Float32Array(K * hw),
    augMask = new Float32Array(K * hw);
  const m2aWeight = new Float32Array(K),
    icaWeight = new Float32Array(K),
    augWeight = new Float32Array(K);

  d.union.subjects.forEach((j, idx) => {
    for (const at of d.ref.placeholderAt.get(j)!) tokenSelect[at * K + j] = 1;
    const m = maskAt(d.union.masks[idx]!, gw, gh);
    m2aTarget.set(m, j * hw);
    const at = d.ref.classWordAt.get(j)!;
    if (frozen) icaTarget.set(classMapTarget(frozen, at, m, 0), j * hw);
    else classSelect[at * K + j] = 1;
    m2aWeight[j] = 1;
    icaWeight[j] = 1;
  });
  if (d.aug && d.augmented) {
    d.augmented.subjects.forEach((j, idx) => {
      const at = d.aug!.placeholderAt.get(j);
      const mask = d.augmented!.masks[idx];
      if (at === undefined || !mask) return; // a subject listed but not named in the prompt has no map to train
      for (const p of at) tokenSelect[T * K + p * K + j] = 1;
      const m = maskAt(mask, gw, gh);
      const classAt = d.aug!.classWordAt.get(j)!;
      if (frozen) augTarget.set(classMapTarget(frozen, classAt, m, 1), j * hw);
      else {
        classSelect[T * K + classAt * K + j] = 1;
        augMask.set(m, j * hw);
      }
      augWeight[j] = 1;
    });
  }
  const targets: Record<string, HostTensor> = frozen
    ? { ica_target: f32([K, hw], icaTarget), aug_target: f32([K, hw], augTarget) }
    : { class_input_ids: fromNumbers(setup.idsType, [2, T], d.classIds), class_select: f32([2, T, K], classSelect), aug_mask: f32([K, hw], augMask) };
  const l = setup.lambdas;
  return {
    input_ids: fromNumbers(setup.idsType, [2, T], ids),
    noisy_latents: setup.latentType === DataType.FLOAT ? f32([2, C, h, w], d.zt) : fromNumbers(setup.latentType, [2, C, h, w], d.zt),
    timestep: oneTimestep(setup) ? fromNumbers(setup.timestepType, setup.timestepDims!, [d.timesteps[0]]) : fromNumbers(setup.timestepType, [2], d.timesteps),
    target: f32([2, C, h, w], d.target),
    md_mask: f32([2, 1, h, w], mdMask),
    token_select: f32([2, T, K], tokenSelect),
    m2a_target: f32([K, hw], m2aTarget),
    ...targets,
    m2a_weight: f32([K], m2aWeight),
    ica_weight: f32([K], icaWeight),
    aug_weight: f32([K], augWeight),
    lambdas: f32([4], Float32Array.of(l.md, l.m2a, l.ica, l.aug)),
  };
}

/** Feeds with a row per batch entry (axis 0): the rest are per subject or shared. */
const ROW_FEEDS = ['input_ids', 'noisy_latents', 'target', 'md_mask', 'token_select', 'class_input_ids', 'class_select'] as const;

/**
 * A batch-2 step's feeds as the feeds of one-row passes of a batch-1 training graph (rows per pass 1):
 * row 0 in the reference's part (L_MD, L_M2A, L_ICA; aug_weight zeroed) and row 1 in the augmented image's
 * (L_AUG; m2a_weight and ica_weight zeroed; its md_mask is zero unless a prior set trains L_MD there). Every term reads one row only, so
 * the passes' losses and gradients add up to the batch-2 step's. Row 1 is left out when it trains nothing
 * (no augmented set: every aug_weight is 0), which halves the step.
 */
export function splitRows(feeds: Record<string, HostTensor>): Record<string, HostTensor>[] {
  const row = (t: HostTensor, r: 0 | 1): HostTensor => {
    if (t.dims[0] !== 2) throw new TrainingError('BAD_INPUT', `splitRows: a row feed has ${t.dims[0]} rows, expected 2`);
    const n = t.data.length / 2;
    return { dtype: t.dtype, dims: [1, ...t.dims.slice(1)], data: t.data.slice(r * n, (r + 1) * n) };
  };
  const zeros = (t: HostTensor): HostTensor => ({ dtype: t.dtype, dims: [...t.dims], data: new Float32Array(t.data.length) });
  const pass = (r: 0 | 1): Record<string, HostTensor> => {
    const out: Record<string, HostTensor> = { ...feeds };
    for (const name of ROW_FEEDS) if (feeds[name]) out[name] = row(feeds[name], r);
    const t = feeds.timestep;
    if (t && t.dims.length === 1 && t.dims[0] === 2) out.timestep = row(t, r);
    if (r === 0) out.aug_weight = zeros(feeds.aug_weight!);
    else {
      out.m2a_weight = zeros(feeds.m2a_weight!);
      out.ica_weight = zeros(feeds.ica_weight!);
    }
    return out;
  };
  const md = feeds.md_mask!.data as Float32Array;
  const trainsAug = (feeds.aug_weight!.data as Float32Array).some((w) => w !== 0) || md.subarray(md.length / 2).some((m) => m !== 0);
  return trainsAug ? [pass(0), pass(1)] : [pass(0)];
}
