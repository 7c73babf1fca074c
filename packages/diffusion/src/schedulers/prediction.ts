/**
 * The variance-preserving forward process and the conversions between a model's output and (x0, eps),
 * shared by DDPM and DDIM. With abar = alphas_cumprod[t]:
 *
 *   x_t = sqrt(abar) x0 + sqrt(1 - abar) eps                    (add_noise)
 *   v   = sqrt(abar) eps - sqrt(1 - abar) x0                    (get_velocity, Salimans & Ho 2022)
 *   epsilon output:  x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
 *   v output:        x0 = sqrt(abar) x_t - sqrt(1 - abar) v,  eps = sqrt(abar) v + sqrt(1 - abar) x_t
 *   sample output:   eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)
 *
 * Coefficients and per-element arithmetic are float64 (diffusers uses float32 throughout); results are
 * rounded to float32 once, so they agree with diffusers to a few float32 ulps and are slightly closer
 * to the exact values.
 */
import { DiffusionError } from '../errors.js';
import type { PredictionType } from '../types.js';

export function checkSameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new DiffusionError('BAD_ARGUMENT', `${what}: lengths differ (${a.length} vs ${b.length})`);
}

/** alphas_cumprod[t] for an integer training timestep t. */
export function alphaBarAt(alphasCumprod: Float64Array, timestep: number): number {
  const abar = Number.isInteger(timestep) ? alphasCumprod[timestep] : undefined;
  if (abar === undefined) {
    throw new DiffusionError('BAD_ARGUMENT', `timestep ${timestep} is not an integer in [0, ${alphasCumprod.length - 1}]`);
  }
  return abar;
}

/** q(x_t | x0): sqrt(abar) x0 + sqrt(1 - abar) noise. */
export function noiseAt(abar: number, original: Float32Array, noise: Float32Array): Float32Array {
  checkSameLength('addNoise(original, noise)', original, noise);
  const a = Math.sqrt(abar);
  const b = Math.sqrt(1 - abar);
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = a * original[i]! + b * noise[i]!;
  return out;
}

/** The v-prediction target sqrt(abar) noise - sqrt(1 - abar) x0. */
export function velocityAt(abar: number, original: Float32Array, noise: Float32Array): Float32Array {
  checkSameLength('getVelocity(original, noise)', original, noise);
  const a = Math.sqrt(abar);
  const b = Math.sqrt(1 - abar);
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = a * noise[i]! - b * original[i]!;
  return out;
}

/** Predicted x0 and eps (float64) from a model output at x_t with cumulative alpha `abar`. */
export interface OriginalAndNoise {
  x0: Float64Array;
  eps: Float64Array;
}

/**
 * Converts a model output into (x0, eps). With `clipRange`, x0 is clamped to [-clipRange, clipRange]
 * after eps is derived (diffusers clips only x0; eps stays the model's unless a caller re-derives it).
 */
export function toOriginalAndNoise(
  predictionType: PredictionType,
  abar: number,
  modelOutput: Float32Array,
  sample: Float32Array,
  clipRange?: number,
): OriginalAndNoise {
  checkSameLength('step(modelOutput, sample)', modelOutput, sample);
  const n = sample.length;
  const x0 = new Float64Array(n);
  const eps = new Float64Array(n);
  const a = Math.sqrt(abar);
  const b = Math.sqrt(1 - abar);
  switch (predictionType) {
    case 'epsilon':
      for (let i = 0; i < n; i++) {
        eps[i] = modelOutput[i]!;
        x0[i] = (sample[i]! - b * modelOutput[i]!) / a;
      }
      break;
    case 'v_prediction':
      for (let i = 0; i < n; i++) {
        x0[i] = a * sample[i]! - b * modelOutput[i]!;
        eps[i] = a * modelOutput[i]! + b * sample[i]!;
      }
      break;
    case 'sample':
      for (let i = 0; i < n; i++) {
        x0[i] = modelOutput[i]!;
        eps[i] = (sample[i]! - a * modelOutput[i]!) / b;
      }
      break;
    default:
      throw new DiffusionError('BAD_CONFIG', `scheduler prediction_type "${String(predictionType)}" is not one of epsilon, v_prediction, sample`);
  }
  if (clipRange !== undefined) {
    for (let i = 0; i < n; i++) x0[i] = Math.min(clipRange, Math.max(-clipRange, x0[i]!));
  }
  return { x0, eps };
}

/** Calls the noise source of a stochastic step and checks what it returned. */
export function drawNoise(noise: (() => Float32Array) | undefined, length: number, who: string): Float32Array {
  if (!noise) throw new DiffusionError('BAD_ARGUMENT', `${who} is stochastic here and needs a noise source (step's 4th argument)`);
  const z = noise();
  if (z.length !== length) throw new DiffusionError('BAD_ARGUMENT', `${who}: noise source returned ${z.length} values, the sample has ${length}`);
  return z;
}
