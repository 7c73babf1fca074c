/**
 * The denoising loop shared by text-to-image, image-to-image and inpainting: per timestep, scale the
 * input, one UNet call (a doubled batch under classifier-free guidance), combine, scheduler step, and an
 * optional hook that rewrites the latents after the step (inpainting's blending).
 */
import type { AttentionMaps, Scheduler } from '../types.js';
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

export interface DenoiseResult {
  latents: FloatTensor;
  /** Cross-attention maps of the prompts' rows averaged over the steps, when the UNet captures them. */
  attention?: AttentionMaps;
}

export async function denoise(a: DenoiseArgs): Promise<DenoiseResult> {
  const dims = a.latents.dims;
  let latents = a.latents.data;
  const cfg = usesGuidance(a.guidance);
  const total = a.timesteps.length;
  let attention: AttentionMaps | undefined;
  for (let i = 0; i < total; i++) {
    const t = a.timesteps[i]!;
    const input: FloatTensor = { dims, data: a.scheduler.scaleModelInput(latents, t) };
    const out = await a.unet.predict(cfg ? doubleBatch(input) : input, t, a.hidden);
    const pred = cfg ? combineGuided(out.noise, a.guidance) : out.noise;
    if (out.attention) attention = accumulate(attention, out.attention, cfg, 1 / total);
    latents = a.scheduler.step(pred.data, t, latents, () => a.noise.draw());
    a.afterStep?.(latents, i);
    a.onProgress?.(i + 1, total);
  }
  return { latents: { dims, data: latents }, ...(attention ? { attention } : {}) };
}

/** sum += weight * maps of the conditional rows (the second half under guidance). */
function accumulate(sum: AttentionMaps | undefined, maps: AttentionMaps, cfg: boolean, weight: number): AttentionMaps {
  const [b = 0, ...rest] = maps.probs.dims;
  const rows = cfg ? b / 2 : b;
  const src = cfg ? maps.probs.data.subarray(maps.probs.data.length / 2) : maps.probs.data;
  const acc = sum ?? { probs: { dims: [rows, ...rest], data: new Float32Array(src.length) }, height: maps.height, width: maps.width };
  for (let i = 0; i < src.length; i++) acc.probs.data[i]! += weight * src[i]!;
  return acc;
}
