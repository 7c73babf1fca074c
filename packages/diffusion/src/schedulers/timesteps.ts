/**
 * Inference timesteps for `set_timesteps`, reproducing diffusers' numpy expressions (Table 2 of Lin et
 * al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"), in denoising order:
 *
 *   leading:  (arange(0, n) * (T // n)).round()[::-1] + steps_offset
 *   trailing: round(arange(T, 0, -T / n)) - 1
 *   linspace: linspace(0, T - 1, n).round()[::-1]
 *
 * numpy rounds half to even (linspace(0, 999, 7) has 166.5 -> 166) and builds float ranges as
 * start + i * (second - first); both are reproduced so the integers match numpy's exactly.
 * Euler keeps the unrounded float32 linspace (`linspaceTimesteps(..., false)`).
 */
import { DiffusionError } from '../errors.js';
import type { TimestepSpacing } from '../types.js';

/** numpy.round / Python round: to nearest, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.arange(start, stop, step) for floats: length ceil((stop - start) / step), values start + i * delta. */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  const delta = start + step - start;
  return Array.from({ length: len }, (_, i) => (i === 0 ? start : i === 1 ? start + step : start + i * delta));
}

/** numpy.linspace(start, stop, n) with the endpoint: start + i * ((stop - start) / (n - 1)), last = stop. */
export function numpyLinspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : i * step + start));
}

export function checkStepCount(numInferenceSteps: number, numTrainTimesteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > numTrainTimesteps) {
    throw new DiffusionError(
      'BAD_ARGUMENT',
      `number of inference steps ${numInferenceSteps} must be an integer in [1, num_train_timesteps = ${numTrainTimesteps}]`,
    );
  }
}

/**
 * Integer timesteps (DDPM, DDIM) for `spacing`, descending. `stepsOffset` applies to `leading` only,
 * as in diffusers.
 */
export function integerTimesteps(spacing: TimestepSpacing, n: number, numTrainTimesteps: number, stepsOffset: number): number[] {
  checkStepCount(n, numTrainTimesteps);
  const T = numTrainTimesteps;
  switch (spacing) {
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case 'trailing':
      return numpyArange(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    case 'linspace':
      return numpyLinspace(0, T - 1, n)
        .map(roundHalfEven)
        .reverse();
    default:
      throw new DiffusionError('BAD_CONFIG', `scheduler timestep_spacing "${String(spacing)}" is not one of leading, trailing, linspace`);
  }
}

/**
 * Timesteps of diffusers' EulerDiscreteScheduler: as `integerTimesteps` except that `linspace` keeps the
 * fractional values, rounded to float32 (e.g. 999, 978.6122..., ...).
 */
export function eulerTimesteps(spacing: TimestepSpacing, n: number, numTrainTimesteps: number, stepsOffset: number): number[] {
  if (spacing === 'linspace') {
    checkStepCount(n, numTrainTimesteps);
    return numpyLinspace(0, numTrainTimesteps - 1, n)
      .map(Math.fround)
      .reverse();
  }
  return integerTimesteps(spacing, n, numTrainTimesteps, stepsOffset);
}
