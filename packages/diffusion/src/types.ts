/**
 * Contracts between the parts of this package. Implementations live in their own files; this file only
 * names what crosses between them, so each part can be built and tested on its own.
 */
import type { FloatTensor } from './tensor.js';

export type ExecutionProvider = 'cpu' | 'cuda';

/** How onnxruntime sessions are created for a bundle's models. */
export interface RuntimeOptions {
  executionProviders?: ExecutionProvider[];
  /** Threads for one op (onnxruntime intraOpNumThreads); default: onnxruntime's choice. */
  intraOpNumThreads?: number;
}

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** scheduler/scheduler_config.json, with diffusers' defaults filled in. */
export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  /** Explicit betas (diffusers `trained_betas`), overriding the schedule when present. */
  trainedBetas?: number[];
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  clipSample: boolean;
  clipSampleRange: number;
  setAlphaToOne: boolean;
}

/** A loaded, validated model bundle (DESIGN.md "Model bundle"): paths and facts, no sessions. */
export interface ModelBundle {
  dir: string;
  modelIndex: Record<string, unknown>;
  scheduler: SchedulerConfig;
  tokenizerDir: string;
  textEncoderPath: string;
  unetPath: string;
  vaeEncoderPath: string;
  vaeDecoderPath: string;
  /** Image side in pixels the UNet was trained at (512 for SD 2.1-base, 768 for SD 2.1). */
  sampleSize: number;
  /** Pixels per latent cell (8 for SD). */
  vaeScaleFactor: number;
  latentChannels: number;
  /** z = vae_encode(x) * scalingFactor (0.18215 for SD). */
  vaeScalingFactor: number;
  /** Width of the text encoder's hidden states (1024 for SD 2.x). */
  textEmbedDim: number;
  /** Tokens per prompt (77 for CLIP). */
  maxTokens: number;
}

/** Cross-attention maps: probabilities over the prompt's tokens per latent cell. */
export interface AttentionMaps {
  /** [B, h*w, tokens]: averaged over heads and over the captured layers. */
  probs: FloatTensor;
  /** Grid of the captured layers (latent/4 by default). */
  height: number;
  width: number;
}

/** One denoising scheduler (diffusers semantics). Latents are flat Float32Arrays of one batch. */
export interface Scheduler {
  readonly config: SchedulerConfig;
  /** Timesteps of the current schedule, in denoising order. */
  readonly timesteps: number[];
  /** Standard deviation of the initial noise (1 for DDPM/DDIM, sigma_max for Euler). */
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** Input scaling some schedulers need before the model call (Euler divides by sqrt(sigma^2+1)). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One reverse step from `timestep`; `noise` is used only by stochastic steps (DDPM, DDIM eta>0). */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: () => Float32Array): Float32Array;
  /** Forward process q(x_t | x_0) at an integer training timestep. */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
  /** The v_prediction training target sqrt(abar_t) noise - sqrt(1 - abar_t) original (METHOD.md). */
  getVelocity(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}
