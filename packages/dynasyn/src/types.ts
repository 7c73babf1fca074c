/**
 * Contracts between the parts of packages/dynasyn (METHOD.md is the source of every default). Each part
 * lives in its own folder: graph/ (training graph: composition, losses, adapters), train/ (union sampling,
 * batches, the two-phase trainer), augment/ (prompts, drafts, pseudo masks, composition, GSA),
 * output/ (artifacts, metrics, report, evaluation), personalize.ts (the whole job).
 */
import type { PresetName, Stage } from '@dynasyn/domain';
import type { HostTensor } from '@dynasyn/ort-training';

/** 8-bit RGB and 0/1 masks, structurally the same as @dynasyn/imaging's RgbImage / Mask. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Subject {
  mask: Mask;
  /** Class word (`panda`, `bowl`): initialises the placeholder row and replaces it in class prompts. */
  classWord: string;
  /** Short description used in augmentation prompts (`toy panda with white belly`); default the class word. */
  nounPhrase?: string;
}

export interface PersonalizationInput {
  image: RgbImage;
  subjects: Subject[];
}

/** Loss weights (METHOD.md "Losses"): L = md*L_MD + m2a*L_M2A + ica*L_ICA + aug*L_AUG. */
export interface LossWeights {
  md: number;
  m2a: number;
  ica: number;
  aug: number;
}
export const PAPER_LOSS_WEIGHTS: LossWeights = { md: 1, m2a: 1e-2, ica: 5e-3, aug: 1e-4 };

export interface PhaseOptions {
  steps: number;
  lr: number;
}

export interface AdapterOptions {
  /** 'lora': low-rank adapters on attention projections (default); 'full': train chosen tensors directly. */
  mode: 'lora' | 'full';
  /** LoRA rank (4..16). */
  rank: number;
  /** LoRA scale alpha (update = (alpha / rank) * x A B). Default: rank (scale 1). */
  alpha?: number;
  /** Which models get adapters. Default both. */
  targets: ('unet' | 'text_encoder')[];
  /** 'full' mode: initializer names (exact) or /regex/ strings of the tensors to train. */
  fullTensors?: string[];
}

/** Share of each prompt category among the template prompts; `{ plain: 1 }` is image augmentation without prompt augmentation. */
export type PromptMix = Partial<Record<'plain' | 'action' | 'interaction', number>>;

export interface AugmentationOptions {
  /** Augmented (image, prompt, masks) triples (METHOD.md: 30). 0 disables L_AUG. */
  count: number;
  /** 'templates' (built-in, no network) or an OpenAI-compatible chat endpoint. */
  promptProvider:
    { kind: 'templates'; mix?: PromptMix } | { kind: 'openai'; baseUrl: string; apiKey?: string; model: string; timeoutMs?: number; retries?: number };
  /** Steps of the draft text-to-image sampling. */
  draftSteps: number;
  draftGuidance: number;
  /** Guided SDE Augmentation: SDEdit strength (t0 = strength * T), METHOD.md 0.7. */
  gsaStrength: number;
  /** 'fast': DDIM with `gsaSteps` total steps (strength*steps denoising); 'paper': 700 DDPM steps. */
  gsaSchedule: 'fast' | 'paper';
  gsaSteps: number;
  /** Pseudo masks: 'attention' (default: cross-attention maps of each subject's words) or a SAM ONNX model. */
  pseudoMasks: { kind: 'attention'; threshold: number } | { kind: 'sam'; modelDir: string };
}

export interface TrainOptions {
  phase1: PhaseOptions;
  phase2: PhaseOptions;
  adapters: AdapterOptions;
  lambdas: LossWeights;
  /** Normalise A(c) by its max in L_ICA/L_AUG (METHOD.md default true; the paper's literal form is false). */
  icaNormalizeBoth: boolean;
  /** AdamW as Break-a-Scene: weight decay 1e-2, grad-norm clip 1.0; fresh state for phase 2. */
  weightDecay: number;
  maxGradNorm: number;
  /** Write a checkpoint every K steps (0: only at phase ends). */
  checkpointEvery: number;
  /** Attention grid side as a fraction of the latent side (METHOD.md: latent/4). */
  attentionGridDivisor: number;
  /** Horizontal flip probability in union sampling (0.5). */
  flipProbability: number;
  /** Subjects per step: `union` (k ~ U{1..N}, default), `one` (a single subject, the TI/DB "+mask" baselines), `all`. */
  subjectsPerStep?: 'union' | 'one' | 'all';
  /** L_MD under the union mask (default true); false: the whole image (DreamBooth without masks). */
  maskedDiffusion?: boolean;
  /**
   * The augmented set is a class-prior set (images of the base model from class prompts, no placeholders):
   * L_MD also reconstructs it, DreamBooth's prior-preservation loss; no L_AUG. Default false.
   */
  priorPreservation?: boolean;
  /**
   * Embedding rows (vectors) per placeholder: 1 (default, METHOD.md: one row from the class word's first
   * sub-token), or up to MAX_PLACEHOLDER_VECTORS, each `<asset_i>` then standing for that many tokens that
   * start from its noun phrase's sub-tokens (multi-vector textual inversion: one row holds a class or a
   * colour, not a class, a colour, a pattern and an accessory at once).
   */
  placeholderVectors?: number;
}

// the most rows a placeholder may have is service vocabulary too (the API validates it): defined in @dynasyn/domain
export { MAX_PLACEHOLDER_VECTORS } from '@dynasyn/domain';

export interface SampleSettings {
  prompts: string[];
  seeds?: number[];
  steps: number;
  guidance: number;
  scheduler: 'ddim' | 'euler' | 'ddpm';
}

// the preset names and stage names are service vocabulary too (the API validates them): defined in @dynasyn/domain
export type { PresetName, Stage } from '@dynasyn/domain';

export interface DynasynOptions {
  preset: PresetName;
  seed: number;
  train: TrainOptions;
  augmentation: AugmentationOptions;
  sampling: SampleSettings;
  /** onnxruntime execution providers and threads. */
  executionProviders: ('cpu' | 'cuda')[];
  intraOpNumThreads?: number;
  /**
   * Rows of the training graph per pass: 2, or 1 for half the activation memory at the same result
   * (two passes per step). Default: 1 from 96x96 latents (SD 2.1 at 768 px) up, else 2.
   */
  rowsPerPass?: 1 | 2;
}

/** Progress of a long stage, for CLI progress bars and the service's per-stage progress. */
export interface ProgressEvent {
  stage: Stage;
  step: number;
  total: number;
  /** Training: phase 1 or 2. */
  phase?: 1 | 2;
  /** Training: every loss term of this step (`md`, `m2a`, `ica`, `aug`, `total`). */
  losses?: Record<string, number>;
  message?: string;
}
export type ProgressListener = (e: ProgressEvent) => void;

/** One augmented training example (METHOD.md "Prompt-and-image augmentation"). */
export interface AugmentedExample {
  image: RgbImage;
  /** Prompt with placeholders, e.g. `a photo of <asset0> playing with <asset1>`. */
  prompt: string;
  /** The same prompt with class words in place of placeholders (c_hat_a). */
  classPrompt: string;
  /** The same prompt with noun phrases (what the base model was asked to draw). */
  nounPrompt: string;
  /** Indices of the subjects that appear, and their pseudo masks at image size (same order). */
  subjects: number[];
  masks: Mask[];
  /** plain | action | interaction (METHOD.md "Sampling and evaluation"). */
  category: 'plain' | 'action' | 'interaction';
}

/** What personalization learns: rows of the placeholder tokens, and adapters (phase 2). */
export interface LearnedConcepts {
  tokens: string[];
  classWords: string[];
  /** [N * V, D] placeholder embedding rows: V = placeholderVectors rows per token, token by token. */
  embeddings: HostTensor;
  /** Rows per token (multi-vector placeholders); absent: 1. */
  placeholderVectors?: number;
  /** Adapter tensors by name (LoRA A/B per adapted projection), empty after phase 1 only. */
  adapters: Map<string, HostTensor>;
  /** Adapter placement: for each adapted weight, the names of its A and B tensors and the scale. */
  adapterSpec: AdapterSpec[];
}

export interface AdapterSpec {
  model: 'unet' | 'text_encoder';
  /** The frozen weight initializer the adapter adds to (y = x W + scale * x A B). */
  weight: string;
  a: string;
  b: string;
  scale: number;
  /** The weight is stored [out, in] (a Gemm with transB=1): the update adds (scale A B)^T to it. */
  transposed?: boolean;
}

/** One training step's numbers (a metrics.json row; progress of the trainer). */
export interface StepMetrics {
  phase: 1 | 2;
  /** 1-based step within its phase. */
  step: number;
  md: number;
  m2a: number;
  ica: number;
  /** 0 when the step has no augmented example (L_AUG off). */
  aug: number;
  /** The weighted loss L that was minimised. */
  total: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Wall time of the step in milliseconds (batch, frozen pass, forward/backward, update). */
  ms: number;
}
