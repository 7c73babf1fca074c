/**
 * Noise schedules as diffusers builds them (`betas`, `alphas_cumprod` of DDPMScheduler & co.).
 *
 * Precision: diffusers holds betas and alphas_cumprod as float32 tensors. Here each beta is computed in
 * float64 from the published formula and rounded to float32 once; `1 - beta` is then exact in float64
 * and rounded to float32 (the same value torch's float32 subtraction gives); the cumulative product is
 * accumulated in float64 and each prefix rounded to float32, as torch.cumprod does on the CPU. torch's
 * float32 linspace rounds intermediate values (differently per SIMD width), so linear/scaled_linear
 * betas may differ from torch's by a few float32 ulps (relative < 4e-7); alphas_cumprod then agrees
 * to 1e-6 relative (checked against a PyTorch fixture). Values are stored in Float64Arrays that hold these float32 numbers exactly, so
 * the step math downstream runs in float64 on diffusers' float32 inputs.
 */
import { DiffusionError } from '../errors.js';
import type { SchedulerConfig } from '../types.js';

/** Glide's cosine alpha_bar(t) for t in [0, 1] (Nichol & Dhariwal 2021, eq. 17, s = 0.008). */
export const cosineAlphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;

/** `betas_for_alpha_bar` of diffusers: beta_i = min(1 - abar((i+1)/T) / abar(i/T), maxBeta). */
export function betasForAlphaBar(numTimesteps: number, maxBeta = 0.999, alphaBar = cosineAlphaBar): Float64Array {
  const betas = new Float64Array(numTimesteps);
  for (let i = 0; i < numTimesteps; i++) {
    const t1 = i / numTimesteps;
    const t2 = (i + 1) / numTimesteps;
    betas[i] = Math.fround(Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta));
  }
  return betas;
}

/** float64 linspace(start, end, n) (endpoints exact), each value rounded to float32. */
function linspaceF32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const step = n > 1 ? (end - start) / (n - 1) : 0;
  for (let i = 0; i < n; i++) out[i] = Math.fround(i === n - 1 && n > 1 ? end : start + i * step);
  return out;
}

/** The betas of `config`: trained_betas if given, else its beta_schedule. Float32 values (see header). */
export function makeBetas(config: SchedulerConfig): Float64Array {
  const n = config.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1) throw new DiffusionError('BAD_CONFIG', `scheduler num_train_timesteps ${n} must be a positive integer`);
  if (config.trainedBetas !== undefined) {
    if (config.trainedBetas.length !== n) {
      throw new DiffusionError('BAD_CONFIG', `scheduler trained_betas has ${config.trainedBetas.length} values, num_train_timesteps is ${n}`);
    }
    return Float64Array.from(config.trainedBetas, (b) => Math.fround(b));
  }
  switch (config.betaSchedule) {
    case 'linear':
      return linspaceF32(config.betaStart, config.betaEnd, n);
    case 'scaled_linear': {
      // torch squares the float32 linspace in float32: square the rounded root, round again.
      const roots = linspaceF32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n);
      return roots.map((r) => Math.fround(r * r));
    }
    case 'squaredcos_cap_v2':
      return betasForAlphaBar(n);
    default:
      throw new DiffusionError('BAD_CONFIG', `scheduler beta_schedule "${String(config.betaSchedule)}" is not one of linear, scaled_linear, squaredcos_cap_v2`);
  }
}

/** alphas_cumprod[t] = prod_{i<=t} (1 - beta_i), accumulated in float64, each prefix rounded to float32. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    const beta = betas[i]!;
    if (!(beta >= 0 && beta < 1)) throw new DiffusionError('BAD_CONFIG', `scheduler beta[${i}] = ${beta} is outside [0, 1)`);
    acc *= Math.fround(1 - beta);
    out[i] = Math.fround(acc);
  }
  return out;
}
