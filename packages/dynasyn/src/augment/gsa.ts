/**
 * Guided SDE Augmentation (METHOD.md augmentation step 5; SDEdit, Meng et al. 2021): the composed image is
 * noised to t0 = strength * T and denoised with the augmented prompt (noun phrases) on the base model.
 * 'paper' runs the paper's schedule, DDPM over all T training timesteps, so strength 0.7 is 700 forward
 * and 700 reverse steps; 'fast' (default) runs DDIM over `steps` total, of which strength * steps denoise
 * (50 -> 35).
 */
import type { DiffusionPipeline, SchedulerKind } from '@dynasyn/diffusion';
import type { RgbImage } from '../types.js';
import { AugmentationError } from './errors.js';

export interface GsaOptions {
  /** SDEdit strength: t0 = strength * T (METHOD.md 0.7). */
  strength: number;
  schedule: 'fast' | 'paper';
  /** 'fast': total DDIM steps of the schedule (strength * steps of them run). Ignored by 'paper'. */
  steps: number;
  guidance: number;
  seed: number;
  negativePrompt?: string;
  onStep?: (step: number, total: number) => void;
}

export interface GsaResult {
  image: RgbImage;
  seed: number;
  scheduler: SchedulerKind;
  /** Steps of the full schedule, and how many of them denoised. */
  steps: number;
  denoisingSteps: number;
}

/** The scheduler and schedule length GSA runs for a bundle with `trainTimesteps` (1000 for SD). */
export function gsaSchedule(
  o: Pick<GsaOptions, 'schedule' | 'steps' | 'strength'>,
  trainTimesteps: number,
): { scheduler: SchedulerKind; steps: number; denoisingSteps: number } {
  if (!(o.strength > 0 && o.strength <= 1)) throw new AugmentationError('BAD_ARGUMENT', `GSA strength must be in (0, 1], got ${o.strength}`);
  const steps = o.schedule === 'paper' ? trainTimesteps : o.steps;
  if (!Number.isInteger(steps) || steps < 1) throw new AugmentationError('BAD_ARGUMENT', `GSA steps must be a positive integer, got ${steps}`);
  // as the pipeline's image-to-image: the last floor(steps * strength) timesteps run
  return { scheduler: o.schedule === 'paper' ? 'ddpm' : 'ddim', steps, denoisingSteps: Math.floor(steps * o.strength) };
}

export async function guidedSdeAugmentation(pipeline: DiffusionPipeline, image: RgbImage, prompt: string, o: GsaOptions): Promise<GsaResult> {
  const plan = gsaSchedule(o, pipeline.bundle.scheduler.numTrainTimesteps);
  const res = await pipeline.imageToImage({
    prompt,
    image,
    strength: o.strength,
    steps: plan.steps,
    scheduler: plan.scheduler,
    guidance: o.guidance,
    seed: o.seed,
    ...(o.negativePrompt !== undefined ? { negativePrompt: o.negativePrompt } : {}),
    ...(o.onStep ? { onProgress: o.onStep } : {}),
  });
  return { image: res.images[0]!, seed: res.seeds[0]!, ...plan };
}
