/**
 * diffusers' DDPMScheduler (Ho et al. 2020): the ancestral step x_t -> x_{prev} samples the posterior
 * q(x_prev | x_t, x0) with x0 predicted by the model:
 *
 *   mean = sqrt(abar_prev) beta_t / (1 - abar_t) * x0 + sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t) * x_t
 *   var  = (1 - abar_prev) / (1 - abar_t) * beta_t        (fixed_small, clamped at 1e-20)
 *        = beta_t                                          (fixed_large)
 *
 * where alpha_t = abar_t / abar_prev and beta_t = 1 - alpha_t span the (possibly strided) step, prev is
 * the next timestep of the schedule (-1, abar = 1, after the last), and noise is added only when t > 0.
 */
import { DiffusionError } from '../errors.js';
import type { SchedulerConfig } from '../types.js';
import { DiscreteScheduler } from './discrete.js';
import { alphaBarAt, drawNoise, toOriginalAndNoise } from './prediction.js';

export type DdpmVarianceType = 'fixed_small' | 'fixed_large';

export interface DdpmOptions {
  /** Variance of the reverse step (diffusers variance_type); default 'fixed_small'. */
  varianceType?: DdpmVarianceType;
}

export class DDPMScheduler extends DiscreteScheduler {
  readonly varianceType: DdpmVarianceType;

  constructor(config: SchedulerConfig, options: DdpmOptions = {}) {
    super(config);
    this.varianceType = options.varianceType ?? 'fixed_small';
  }

  /** The timestep after `timestep` in the schedule (-1 after the last); t - 1 before setTimesteps. */
  previousTimestep(timestep: number): number {
    if (this.numInferenceSteps === undefined) return timestep - 1;
    const index = this.timesteps.indexOf(timestep);
    if (index < 0)
      throw new DiffusionError('BAD_ARGUMENT', `timestep ${timestep} is not in the DDPM schedule [${this.timesteps[0]} .. ${this.timesteps.at(-1)}]`);
    return this.timesteps[index + 1] ?? -1;
  }

  /** Variance of the step from `timestep` (before the square root). */
  variance(timestep: number): number {
    const { abarPrev, currentBeta, abar } = this.coefficients(timestep);
    if (this.varianceType === 'fixed_large') return currentBeta;
    return Math.max(((1 - abarPrev) / (1 - abar)) * currentBeta, 1e-20);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: () => Float32Array): Float32Array {
    const { abar, abarPrev, currentAlpha, currentBeta } = this.coefficients(timestep);
    const { x0 } = toOriginalAndNoise(this.config.predictionType, abar, modelOutput, sample, this.clipRange());
    const x0Coeff = (Math.sqrt(abarPrev) * currentBeta) / (1 - abar);
    const sampleCoeff = (Math.sqrt(currentAlpha) * (1 - abarPrev)) / (1 - abar);
    const out = new Float32Array(sample.length);
    if (timestep > 0) {
      const z = drawNoise(noise, sample.length, `DDPM step at t=${timestep}`);
      const std = Math.sqrt(this.variance(timestep));
      for (let i = 0; i < out.length; i++) out[i] = x0Coeff * x0[i]! + sampleCoeff * sample[i]! + std * z[i]!;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = x0Coeff * x0[i]! + sampleCoeff * sample[i]!;
    }
    return out;
  }

  private coefficients(timestep: number): { abar: number; abarPrev: number; currentAlpha: number; currentBeta: number } {
    const abar = alphaBarAt(this.alphasCumprod, timestep);
    const prev = this.previousTimestep(timestep);
    const abarPrev = prev >= 0 ? alphaBarAt(this.alphasCumprod, prev) : 1;
    const currentAlpha = abar / abarPrev;
    return { abar, abarPrev, currentAlpha, currentBeta: 1 - currentAlpha };
  }
}
