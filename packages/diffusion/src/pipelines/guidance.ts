/**
 * Classifier-free guidance (Ho & Salimans 2022), as diffusers computes it: the unconditional and the
 * conditional rows run in ONE UNet batch [uncond_0..uncond_{B-1}, cond_0..cond_{B-1}] and combine as
 * pred = uncond + g * (cond - uncond). With g <= 1 guidance is off (diffusers' rule) and only the
 * conditional rows run.
 */
import type { FloatTensor } from '../tensor.js';

export const usesGuidance = (guidance: number): boolean => guidance > 1;

/** [B,...] latents -> [2B,...] (the same rows twice) for a CFG batch. */
export function doubleBatch(t: FloatTensor): FloatTensor {
  const data = new Float32Array(t.data.length * 2);
  data.set(t.data, 0);
  data.set(t.data, t.data.length);
  return { dims: [t.dims[0]! * 2, ...t.dims.slice(1)], data };
}

/** pred[2B,...] = [uncond; cond] -> uncond + g (cond - uncond), [B,...]. */
export function combineGuided(pred: FloatTensor, guidance: number): FloatTensor {
  const half = pred.data.length / 2;
  const out = new Float32Array(half);
  const d = pred.data;
  for (let i = 0; i < half; i++) {
    const u = d[i]!;
    out[i] = u + guidance * (d[half + i]! - u);
  }
  return { dims: [pred.dims[0]! / 2, ...pred.dims.slice(1)], data: out };
}
