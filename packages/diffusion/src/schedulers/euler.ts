/**
 * diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 with S_churn = 0 by default) in
 * the "sigma" parameterisation x = x_t / sqrt(abar_t), sigma = sqrt((1 - abar) / abar):
 *
 *   scale_model_input: x / sqrt(sigma^2 + 1)       (= x_t, what the UNet was trained on)
 *   epsilon:      x0 = x - sigma_hat eps
 *   v_prediction: x0 = v (-sigma / sqrt(sigma^2 + 1)) + x / (sigma^2 + 1)
 *   step:         x_next = x + (x - x0) / sigma_hat * (sigma_next - sigma_hat)
 *
 * Sigmas of a schedule are the training sigmas linearly interpolated at its timesteps (np.interp), then a
 * final 0. init_noise_sigma is max sigma, or sqrt(max sigma^2 + 1) for `leading` spacing (diffusers).
 * Latent noise is x0 + sigma * noise here (addNoise), not the variance-preserving x_t.
 *
 * Timesteps are float32 values and are fractional for `linspace` spacing (e.g. 978.6122). diffusers
 * feeds them to the UNet as float32; a UNet whose `timestep` input is float gets them as they are, one
 * with an int64 input gets Math.round(t) (a small deviation for linspace only).
 */
import { DiffusionError } from '../errors.js';
import type { Scheduler, SchedulerConfig } from '../types.js';
import { alphasCumprod, makeBetas } from './betas.js';
import { checkSameLength, drawNoise } from './prediction.js';
import { eulerTimesteps } from './timesteps.js';

export interface EulerOptions {
  /** Karras S_churn: noise re-injected per step (0, the default, is the deterministic Euler ODE solver). */
  sChurn?: number;
  /** Churn only where sTmin <= sigma <= sTmax; defaults 0 and Infinity. */
  sTmin?: number;
  sTmax?: number;
  /** Scale of the churn noise; default 1. */
  sNoise?: number;
}

const f32 = Math.fround;

export class EulerDiscreteScheduler implements Scheduler {
  readonly config: SchedulerConfig;
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** sqrt((1 - abar_t) / abar_t) for t = 0..T-1 (ascending), float32 arithmetic as torch. */
  readonly trainSigmas: Float64Array;
  /** Descending float32 timesteps; before setTimesteps, every training timestep. Do not mutate. */
  timesteps: number[];
  /** Sigma of each timestep, then a final 0 (length timesteps.length + 1). Do not mutate. */
  sigmas: number[];
  numInferenceSteps: number | undefined;
  private readonly options: Required<EulerOptions>;

  constructor(config: SchedulerConfig, options: EulerOptions = {}) {
    this.config = config;
    this.betas = makeBetas(config);
    this.alphasCumprod = alphasCumprod(this.betas);
    this.trainSigmas = this.alphasCumprod.map((abar) => f32(Math.sqrt(f32(f32(1 - abar) / abar))));
    this.options = { sChurn: options.sChurn ?? 0, sTmin: options.sTmin ?? 0, sTmax: options.sTmax ?? Infinity, sNoise: options.sNoise ?? 1 };
    const T = config.numTrainTimesteps;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
  }

  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    return this.config.timestepSpacing === 'leading' ? f32(Math.sqrt(f32(f32(max * max) + 1))) : max;
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timestepSpacing, numTrainTimesteps, stepsOffset } = this.config;
    this.timesteps = eulerTimesteps(timestepSpacing, numInferenceSteps, numTrainTimesteps, stepsOffset);
    this.sigmas = [...this.timesteps.map((t) => this.sigmaAt(t)), 0];
    this.numInferenceSteps = numInferenceSteps;
  }

  /** np.interp(t, arange(T), trainSigmas) rounded to float32: the sigma of any timestep in [0, T-1]. */
  sigmaAt(timestep: number): number {
    const last = this.trainSigmas.length - 1;
    if (!(timestep >= 0 && timestep <= last)) throw new DiffusionError('BAD_ARGUMENT', `Euler timestep ${timestep} is outside [0, ${last}]`);
    const j = Math.floor(timestep);
    const lo = this.trainSigmas[j]!;
    if (j === timestep) return lo;
    const hi = this.trainSigmas[j + 1]!;
    return f32((hi - lo) * (timestep - j) + lo);
  }

  /** sample / sqrt(sigma^2 + 1), the divisor in float32 as diffusers computes it. */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.indexOf(timestep)]!;
    const divisor = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return sample.map((x) => x / divisor);
  }

  /** x0 implied by `modelOutput` at the unscaled `sample` (sigma space) and `timestep`. */
  predictOriginalSample(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const sigma = this.sigmas[this.indexOf(timestep)]!;
    return Float32Array.from(this.originalFrom(modelOutput, sample, sigma, sigma));
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: () => Float32Array): Float32Array {
    checkSameLength('step(modelOutput, sample)', modelOutput, sample);
    const index = this.indexOf(timestep);
    const sigma = this.sigmas[index]!;
    const sigmaNext = this.sigmas[index + 1]!;
    const { sChurn, sTmin, sTmax, sNoise } = this.options;
    const gamma = sChurn > 0 && sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (this.sigmas.length - 1), Math.SQRT2 - 1) : 0;
    const sigmaHat = sigma * (gamma + 1);
    let x: Float32Array | Float64Array = sample;
    if (gamma > 0) {
      const z = drawNoise(noise, sample.length, `Euler step with s_churn at t=${timestep}`);
      const scale = sNoise * Math.sqrt(sigmaHat * sigmaHat - sigma * sigma);
      x = Float64Array.from(sample, (v, i) => v + scale * z[i]!);
    }
    const x0 = this.originalFrom(modelOutput, x, sigma, sigmaHat);
    const dt = sigmaNext - sigmaHat;
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! + ((x[i]! - x0[i]!) / sigmaHat) * dt;
    return out;
  }

  /** original + sigma(t) * noise: the noisy latent in this scheduler's sample space (img2img start). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('addNoise(original, noise)', original, noise);
    const sigma = this.sigmaAt(timestep);
    return original.map((x, i) => x + sigma * noise[i]!);
  }

  /**
   * sqrt(abar) noise - sqrt(1 - abar) original with abar = 1 / (1 + sigma(t)^2), i.e. alphas_cumprod at
   * `timestep` (interpolated for fractional ones). diffusers indexes alphas_cumprod by the step index
   * here, which is only right for the full schedule; this uses the timestep.
   */
  getVelocity(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('getVelocity(original, noise)', original, noise);
    const sigma = this.sigmaAt(timestep);
    const a = 1 / Math.sqrt(1 + sigma * sigma);
    const b = sigma * a;
    return noise.map((e, i) => a * e - b * original[i]!);
  }

  private originalFrom(modelOutput: Float32Array, x: Float32Array | Float64Array, sigma: number, sigmaHat: number): Float64Array {
    const n = x.length;
    const x0 = new Float64Array(n);
    switch (this.config.predictionType) {
      case 'epsilon':
        for (let i = 0; i < n; i++) x0[i] = x[i]! - sigmaHat * modelOutput[i]!;
        break;
      case 'v_prediction': {
        const c = -sigma / Math.sqrt(sigma * sigma + 1);
        const d = 1 / (sigma * sigma + 1);
        for (let i = 0; i < n; i++) x0[i] = modelOutput[i]! * c + x[i]! * d;
        break;
      }
      case 'sample':
        x0.set(modelOutput);
        break;
      default:
        throw new DiffusionError('BAD_CONFIG', `scheduler prediction_type "${String(this.config.predictionType)}" is not one of epsilon, v_prediction, sample`);
    }
    return x0;
  }

  private indexOf(timestep: number): number {
    const index = this.timesteps.indexOf(f32(timestep));
    if (index < 0) {
      throw new DiffusionError(
        'BAD_ARGUMENT',
        `timestep ${timestep} is not in the Euler schedule [${this.timesteps[0]} .. ${this.timesteps.at(-1)}]; pass one of scheduler.timesteps`,
      );
    }
    return index;
  }
}
