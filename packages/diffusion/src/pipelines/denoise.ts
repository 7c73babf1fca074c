/**
 * The denoising loop shared by text-to-image, image-to-image and inpainting: per timestep, scale the
 * input, one UNet call (a doubled batch under classifier-free guidance), combine, scheduler step, and an
 * optional hook that rewrites the latents after the step (inpainting's blending).
 */
import type { Scheduler } from '../types.js';
import type { FloatTensor } from '../tensor.js';
import type { Unet } from '../runtime/unet.js';
import { combineGuided, doubleBatch, usesGuidance } from './guidance.js';
import type { BatchNoise } from './noise.js';

/** Called after each denoising step with the number of steps done and the total. */
export type ProgressCallback = (step: number, total: number) => void;

export interface DenoiseArgs {
  unet: Unet;
  scheduler: Scheduler;
  /** Timesteps to run, in order (a suffix of scheduler.timesteps for image-to-image). */
  timesteps: readonly number[];
  latents: FloatTensor;
  /** [2B,77,D] (uncond rows first) under guidance, else [B,77,D]. */
  hidden: FloatTensor;
  guidance: number;
  noise: BatchNoise;
  onProgress?: ProgressCallback | undefined;
  /** Rewrites the latents after step `index` (in place). */
  afterStep?: ((latents: Float32Array, index: number) => void) | undefined;
}

export async function denoise(a: DenoiseArgs): Promise<FloatTensor> {
  const dims = a.latents.dims;
  let latents = a.latents.data;
  const cfg = usesGuidance(a.guidance);
  const total = a.timesteps.length;
  for (let i = 0; i < total; i++) {
    const t = a.timesteps[i]!;
    const input: FloatTensor = { dims, data: a.scheduler.scaleModelInput(latents, t) };
    const { noise } = await a.unet.predict(cfg ? doubleBatch(input) : input, t, a.hidden);
    const pred = cfg ? combineGuided(noise, a.guidance) : noise;
    latents = a.scheduler.step(pred.data, t, latents, () => a.noise.draw());
    a.afterStep?.(latents, i);
    a.onProgress?.(i + 1, total);
  }
  return { dims, data: latents };
}
