/**
 * Pixels <-> VAE tensors, with diffusers' conventions: x = p / 127.5 - 1 going in; coming out
 * p = round(clamp(x / 2 + 0.5, 0, 1) * 255). Images are structural (same shape as @dynasyn/imaging's
 * RgbImage and Mask), so this package needs no image codec.
 */
import { DiffusionError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';

/** 8-bit RGB, interleaved, rows top to bottom (@dynasyn/imaging RgbImage). */
export interface RgbPixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One byte per pixel, 1 = inside (@dynasyn/imaging Mask); any non-zero byte counts as inside. */
export interface MaskPixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/** RGB images of one size -> [B,3,H,W] in [-1,1]. */
export function imagesToTensor(images: readonly RgbPixels[], what = 'image'): FloatTensor {
  const first = images[0];
  if (!first) throw new DiffusionError('BAD_ARGUMENT', `no ${what} given`);
  const { width: w, height: h } = first;
  const plane = w * h;
  const data = new Float32Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    if (img.width !== w || img.height !== h) throw new DiffusionError('BAD_ARGUMENT', `${what} ${b} is ${img.width}x${img.height}; the batch is ${w}x${h}`);
    if (img.data.length !== plane * 3) throw new DiffusionError('BAD_ARGUMENT', `${what} ${b} must be RGB (${plane * 3} bytes), got ${img.data.length} bytes`);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) data[(b * 3 + c) * plane + p] = img.data[p * 3 + c]! / 127.5 - 1;
    }
  });
  return { dims: [images.length, 3, h, w], data };
}

/** [B,3,H,W] in [-1,1] -> B RGB images. */
export function tensorToImages(t: FloatTensor): RgbPixels[] {
  const [b = 0, c, h = 0, w = 0] = t.dims;
  if (t.dims.length !== 4 || c !== 3) throw new DiffusionError('BAD_ARGUMENT', `expected images [B,3,H,W], got [${t.dims}]`);
  const plane = h * w;
  return Array.from({ length: b }, (_, i) => {
    const data = new Uint8Array(plane * 3);
    for (let ch = 0; ch < 3; ch++) {
      const base = (i * 3 + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const v = Math.min(1, Math.max(0, t.data[base + p]! / 2 + 0.5));
        data[p * 3 + ch] = Math.round(v * 255);
      }
    }
    return { width: w, height: h, data };
  });
}

/**
 * A pixel mask -> latent-grid weights [h*w] (1 = repaint). A latent cell is repainted when ANY pixel of
 * its f x f block is inside the mask, so the known region never carries masked pixels into the result.
 */
export function maskToLatentGrid(mask: MaskPixels, factor: number): { data: Float32Array; height: number; width: number } {
  if (mask.data.length !== mask.width * mask.height)
    throw new DiffusionError('BAD_ARGUMENT', `mask must have 1 byte per pixel (${mask.width * mask.height}), got ${mask.data.length}`);
  if (mask.width % factor || mask.height % factor)
    throw new DiffusionError('BAD_ARGUMENT', `mask ${mask.width}x${mask.height} is not a multiple of the VAE factor ${factor}`);
  const width = mask.width / factor,
    height = mask.height / factor;
  const data = new Float32Array(width * height);
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (mask.data[y * mask.width + x]) data[Math.floor(y / factor) * width + Math.floor(x / factor)] = 1;
    }
  }
  return { data, height, width };
}
