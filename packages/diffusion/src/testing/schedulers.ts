/** Test helpers for the schedulers: configs and the PyTorch/numpy reference values in fixtures/schedulers.json. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SchedulerConfig } from '../types.js';

/** Stable Diffusion's scheduler config (scaled_linear 0.00085..0.012, leading, steps_offset 1), with overrides. */
export const sdSchedulerConfig = (overrides: Partial<SchedulerConfig> = {}): SchedulerConfig => ({
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  stepsOffset: 1,
  clipSample: false,
  clipSampleRange: 1,
  setAlphaToOne: false,
  ...overrides,
});

export interface SchedulerFixture {
  num_train_timesteps: number;
  schedules: Record<'linear' | 'scaled_linear' | 'squaredcos_cap_v2', { beta_start: number; beta_end: number; betas: number[]; alphas_cumprod: number[] }>;
  /** `${spacing}:${stepsOffset}:${n}` -> integer timesteps (numpy). */
  timesteps: Record<string, number[]>;
  /** `${spacing}:${stepsOffset}:${n}` -> EulerDiscreteScheduler values for the scaled_linear schedule. */
  euler: Record<string, { timesteps: number[]; sigmas: number[]; init_noise_sigma: number }>;
}

export const schedulerFixture = (): SchedulerFixture =>
  JSON.parse(fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/schedulers.json'), 'utf8')) as SchedulerFixture;

/** Deterministic test vectors without the RNG under test: a fixed sine pattern of amplitude `scale`. */
export const pattern = (n: number, phase: number, scale = 1): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => scale * Math.sin(1.7 * i + phase) * Math.cos(0.3 * i * phase + 1));

export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
