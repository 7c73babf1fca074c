/**
 * scheduler/scheduler_config.json -> SchedulerConfig, with the defaults of diffusers' DDPM/DDIM schedulers
 * for absent fields. Note Stable Diffusion's own configs set clip_sample false, set_alpha_to_one false and
 * steps_offset 1; the defaults below apply only where a file is silent.
 */
import { DiffusionError } from './errors.js';
import type { BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing } from './types.js';

export const BETA_SCHEDULES: readonly BetaSchedule[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2'];
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample'];
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** diffusers' DDPMScheduler/DDIMScheduler constructor defaults. */
export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  stepsOffset: 0,
  clipSample: true,
  clipSampleRange: 1,
  setAlphaToOne: true,
});

/**
 * Validates a parsed scheduler_config.json and fills diffusers' defaults. `source` names the file in
 * errors. Unknown fields (`_class_name`, `skip_prk_steps`, `thresholding`...) are ignored.
 */
export function parseSchedulerConfig(json: unknown, source = 'scheduler_config.json'): SchedulerConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new DiffusionError('BAD_CONFIG', `${source} must hold a JSON object`);
  const o = json as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new DiffusionError('BAD_CONFIG', `${source}: "${field}" is ${JSON.stringify(o[field])}, expected ${expected}`);
  };
  // diffusers writes null for "not set" (trained_betas: null, timestep_spacing absent in old configs).
  const has = (field: string) => o[field] !== undefined && o[field] !== null;
  const num = (field: string, fallback: number, ok: (v: number) => boolean, expected: string): number => {
    if (!has(field)) return fallback;
    const v = o[field];
    return typeof v === 'number' && Number.isFinite(v) && ok(v) ? v : bad(field, expected);
  };
  const bool = (field: string, fallback: boolean): boolean => {
    if (!has(field)) return fallback;
    return typeof o[field] === 'boolean' ? (o[field] as boolean) : bad(field, 'true or false');
  };
  const oneOf = <T extends string>(field: string, allowed: readonly T[], fallback: T): T => {
    if (!has(field)) return fallback;
    return allowed.includes(o[field] as T) ? (o[field] as T) : bad(field, `one of ${allowed.join(', ')}`);
  };
  const d = DEFAULT_SCHEDULER_CONFIG;
  const config: SchedulerConfig = {
    numTrainTimesteps: num('num_train_timesteps', d.numTrainTimesteps, (v) => Number.isInteger(v) && v > 0, 'a positive integer'),
    betaStart: num('beta_start', d.betaStart, (v) => v > 0 && v < 1, 'a number in (0, 1)'),
    betaEnd: num('beta_end', d.betaEnd, (v) => v > 0 && v < 1, 'a number in (0, 1)'),
    betaSchedule: oneOf('beta_schedule', BETA_SCHEDULES, d.betaSchedule),
    predictionType: oneOf('prediction_type', PREDICTION_TYPES, d.predictionType),
    timestepSpacing: oneOf('timestep_spacing', TIMESTEP_SPACINGS, d.timestepSpacing),
    stepsOffset: num('steps_offset', d.stepsOffset, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
    clipSample: bool('clip_sample', d.clipSample),
    clipSampleRange: num('clip_sample_range', d.clipSampleRange, (v) => v > 0, 'a positive number'),
    setAlphaToOne: bool('set_alpha_to_one', d.setAlphaToOne),
  };
  if (config.betaEnd < config.betaStart) bad('beta_end', `a number >= beta_start (${config.betaStart})`);
  if (has('trained_betas')) {
    const betas = o['trained_betas'];
    if (!Array.isArray(betas) || betas.length === 0 || !betas.every((b) => typeof b === 'number' && b > 0 && b < 1)) {
      bad('trained_betas', 'null or a non-empty array of numbers in (0, 1)');
    }
    const list = betas as number[];
    // diffusers sizes alphas_cumprod from the betas and timesteps from num_train_timesteps: they must agree.
    if (has('num_train_timesteps') && list.length !== config.numTrainTimesteps) {
      bad('trained_betas', `${config.numTrainTimesteps} values (num_train_timesteps), got ${list.length}`);
    }
    config.trainedBetas = [...list];
    config.numTrainTimesteps = list.length;
  }
  return config;
}
