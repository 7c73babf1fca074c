/** Schedulers with diffusers' semantics, chosen by name (`--scheduler ddim|euler|ddpm`). */
import { DiffusionError } from '../errors.js';
import type { Scheduler, SchedulerConfig } from '../types.js';
import { DDIMScheduler, type DdimOptions } from './ddim.js';
import { DDPMScheduler, type DdpmOptions } from './ddpm.js';
import { EulerDiscreteScheduler, type EulerOptions } from './euler.js';

export { alphasCumprod, betasForAlphaBar, cosineAlphaBar, makeBetas } from './betas.js';
export { integerTimesteps, eulerTimesteps } from './timesteps.js';
export { DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler };
export type { DdimOptions, DdpmOptions, EulerOptions };
export type { DdpmVarianceType } from './ddpm.js';

export type SchedulerKind = 'ddpm' | 'ddim' | 'euler';
export const SCHEDULER_KINDS: readonly SchedulerKind[] = ['ddpm', 'ddim', 'euler'];

/** Options of every kind; each scheduler reads its own (eta: DDIM, varianceType: DDPM, s*: Euler). */
export type SchedulerOptions = DdimOptions & DdpmOptions & EulerOptions;

/** A scheduler of `kind` for a bundle's scheduler config. */
export function createScheduler(kind: SchedulerKind, config: SchedulerConfig, options: SchedulerOptions = {}): Scheduler {
  switch (kind) {
    case 'ddpm':
      return new DDPMScheduler(config, options);
    case 'ddim':
      return new DDIMScheduler(config, options);
    case 'euler':
      return new EulerDiscreteScheduler(config, options);
    default:
      throw new DiffusionError('BAD_ARGUMENT', `scheduler "${String(kind)}" is not one of ${SCHEDULER_KINDS.join(', ')}`);
  }
}
