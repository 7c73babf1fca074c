import { ImagingError } from './errors.js';
import { assertMask, assertRgb, type FloatTensor, type Mask, type RgbImage } from './types.js';

/** RGB image to the VAE's input `[1,3,H,W]`, planar, values x / 127.5 - 1 in [-1, 1]. */
export function imageToTensor(img: RgbImage): FloatTensor {
  assertRgb(img);
  const n = img.width * img.height;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data[c * n + i] = img.data[i * 3 + c]! / 127.5 - 1;
  return { dims: [1, 3, img.height, img.width], data };
}

/** Mask to `[1,1,H,W]` of 0/1 floats (resize it to latent size first with `resizeMask` for inpainting). */
export function maskToTensor(mask: Mask): FloatTensor {
  assertMask(mask);
  return { dims: [1, 1, mask.height, mask.width], data: Float32Array.from(mask.data) };
}

/**
 * One image of a `[B,3,H,W]` (or `[3,H,W]`) tensor in [-1, 1] (the VAE decoder's output) to 8-bit RGB:
 * (x + 1) * 127.5, clamped to [0, 255] and rounded.
 */
export function tensorToImage(t: FloatTensor, index = 0): RgbImage {
  const dims = t.dims.length === 3 ? [1, ...t.dims] : t.dims;
  const [b, c, h, w] = dims as [number, number, number, number];
  if (dims.length !== 4 || c !== 3 || !(h > 0) || !(w > 0)) throw new ImagingError('BAD_ARGUMENT', `expected a [B,3,H,W] tensor, got [${t.dims}]`);
  if (t.data.length !== b * c * h * w) throw new ImagingError('SIZE_MISMATCH', `tensor [${t.dims}] has ${t.data.length} values`);
  if (!Number.isInteger(index) || index < 0 || index >= b) throw new ImagingError('BAD_ARGUMENT', `image index ${index} out of batch ${b}`);
  const n = h * w;
  const base = index * 3 * n;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const v = Math.round((t.data[base + k * n + i]! + 1) * 127.5);
      out[i * 3 + k] = v < 0 ? 0 : v > 255 ? 255 : v; // NaN becomes 0 via the Uint8Array store
    }
  }
  return { width: w, height: h, data: out };
}
