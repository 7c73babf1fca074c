/**
 * diffusers' DDIMScheduler (Song et al. 2021, eqs. 12 and 16): from x_t with predicted (x0, eps),
 *
 *   sigma_t = eta * sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
 *   x_prev  = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma_t^2) eps + sigma_t z
 *
 * with prev = t - T // n (diffusers uses this stride for every spacing), abar_prev = final_alpha_cumprod
 * (1 with set_alpha_to_one, else abar_0) below 0. eta = 0 is the deterministic DDIM ODE; `invertStep`
 * runs that ODE the other way (DDIM inversion).
 */
import { DiffusionError } from '../errors.js';
import type { SchedulerConfig } from '../types.js';
import { DiscreteScheduler } from './discrete.js';
import { alphaBarAt, checkSameLength, drawNoise, toOriginalAndNoise } from './prediction.js';

export interface DdimOptions {
  /** Weight of the stochastic part: 0 (default) is deterministic DDIM, 1 matches DDPM's posterior variance. */
  eta?: number;
  /** Re-derive eps from the clipped x0 (diffusers use_clipped_model_output); default false. */
  useClippedModelOutput?: boolean;
}

export class DDIMScheduler extends DiscreteScheduler {
  readonly eta: number;
  readonly useClippedModelOutput: boolean;
  /** abar used after the last step: 1 with set_alpha_to_one, else alphas_cumprod[0]. */
  readonly finalAlphaCumprod: number;

  constructor(config: SchedulerConfig, options: DdimOptions = {}) {
    super(config);
    this.eta = options.eta ?? 0;
    if (!(this.eta >= 0)) throw new DiffusionError('BAD_ARGUMENT', `DDIM eta ${options.eta} must be >= 0`);
    this.useClippedModelOutput = options.useClippedModelOutput ?? false;
    this.finalAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
  }

  /** The timestep a step from `timestep` lands on: timestep - T // n (negative after the last step). */
  previousTimestep(timestep: number): number {
    if (this.numInferenceSteps === undefined) {
      throw new DiffusionError('BAD_ARGUMENT', 'DDIM step before setTimesteps: call setTimesteps(numInferenceSteps) first');
    }
    return timestep - Math.floor(this.config.numTrainTimesteps / this.numInferenceSteps);
  }

  /** sigma_t^2 / eta^2 of eq. 16 for the step from `timestep`. */
  variance(timestep: number): number {
    const abar = alphaBarAt(this.alphasCumprod, timestep);
    const abarPrev = this.abarAt(this.previousTimestep(timestep));
    return ((1 - abarPrev) / (1 - abar)) * (1 - abar / abarPrev);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: () => Float32Array): Float32Array {
    const abar = alphaBarAt(this.alphasCumprod, timestep);
    const abarPrev = this.abarAt(this.previousTimestep(timestep));
    const { x0, eps } = toOriginalAndNoise(this.config.predictionType, abar, modelOutput, sample, this.clipRange());
    const std = this.eta * Math.sqrt(this.variance(timestep));
    if (this.useClippedModelOutput) {
      for (let i = 0; i < eps.length; i++) eps[i] = (sample[i]! - Math.sqrt(abar) * x0[i]!) / Math.sqrt(1 - abar);
    }
    const x0Coeff = Math.sqrt(abarPrev);
    const epsCoeff = Math.sqrt(Math.max(0, 1 - abarPrev - std * std));
    const out = new Float32Array(sample.length);
    if (this.eta > 0) {
      const z = drawNoise(noise, sample.length, `DDIM step (eta ${this.eta}) at t=${timestep}`);
      for (let i = 0; i < out.length; i++) out[i] = x0Coeff * x0[i]! + epsCoeff * eps[i]! + std * z[i]!;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = x0Coeff * x0[i]! + epsCoeff * eps[i]!;
    }
    return out;
  }

  /**
   * DDIM inversion, the eta = 0 step run backwards: `sample` is x at the step's landing point
   * previousTimestep(`timestep`) and `modelOutput` the model's output there (evaluated at that lower
   * timestep, clamped to 0); returns x at `timestep`. Exact inverse of `step` when the model output
   * does not change between the two points; no clipping.
   */
  invertStep(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    checkSameLength('invertStep(modelOutput, sample)', modelOutput, sample);
    const abarFrom = this.abarAt(this.previousTimestep(timestep));
    const abarTo = alphaBarAt(this.alphasCumprod, timestep);
    const { x0, eps } = toOriginalAndNoise(this.config.predictionType, abarFrom, modelOutput, sample);
    const a = Math.sqrt(abarTo);
    const b = Math.sqrt(1 - abarTo);
    return Float32Array.from(x0, (x, i) => a * x + b * eps[i]!);
  }

  private abarAt(timestep: number): number {
    return timestep >= 0 ? alphaBarAt(this.alphasCumprod, timestep) : this.finalAlphaCumprod;
  }
}
