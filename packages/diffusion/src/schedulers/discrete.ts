/**
 * What DDPM and DDIM share: the beta schedule, integer timesteps, an identity input scaling, and the
 * variance-preserving forward process (prediction.ts).
 */
import type { Scheduler, SchedulerConfig } from '../types.js';
import { alphasCumprod, makeBetas } from './betas.js';
import { alphaBarAt, noiseAt, toOriginalAndNoise, velocityAt } from './prediction.js';
import { integerTimesteps } from './timesteps.js';

export abstract class DiscreteScheduler implements Scheduler {
  readonly config: SchedulerConfig;
  /** betas[t] as float32 values (betas.ts). */
  readonly betas: Float64Array;
  /** alphas_cumprod[t] (abar_t) as float32 values (betas.ts). */
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  /** Descending integer timesteps; before setTimesteps, every training timestep (as diffusers). Do not mutate. */
  timesteps: number[];
  /** Steps of the current schedule; undefined until setTimesteps. */
  numInferenceSteps: number | undefined;

  constructor(config: SchedulerConfig) {
    this.config = config;
    this.betas = makeBetas(config);
    this.alphasCumprod = alphasCumprod(this.betas);
    this.timesteps = Array.from({ length: config.numTrainTimesteps }, (_, i) => config.numTrainTimesteps - 1 - i);
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timestepSpacing, numTrainTimesteps, stepsOffset } = this.config;
    this.timesteps = integerTimesteps(timestepSpacing, numInferenceSteps, numTrainTimesteps, stepsOffset);
    this.numInferenceSteps = numInferenceSteps;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return noiseAt(alphaBarAt(this.alphasCumprod, timestep), original, noise);
  }

  getVelocity(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return velocityAt(alphaBarAt(this.alphasCumprod, timestep), original, noise);
  }

  /** x0 implied by `modelOutput` at (`sample`, `timestep`) under the config's prediction type, unclipped. */
  predictOriginalSample(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const abar = alphaBarAt(this.alphasCumprod, timestep);
    return Float32Array.from(toOriginalAndNoise(this.config.predictionType, abar, modelOutput, sample).x0);
  }

  /** The clip range for x0 when the config clips (clip_sample), else undefined. */
  protected clipRange(): number | undefined {
    return this.config.clipSample ? this.config.clipSampleRange : undefined;
  }

  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: () => Float32Array): Float32Array;
}
