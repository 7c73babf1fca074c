import sharp from 'sharp';
import { ImagingError } from './errors.js';
import { resizeMask } from './mask.js';
import { assertMask, assertPositiveSize, assertRgb, channelsOf, type Box, type Mask, type Raster, type RgbImage } from './types.js';

/** sharp's resampling kernels; lanczos3 (default) keeps detail when shrinking photos. */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

export interface ResizeOptions {
  /** Resampling kernel for the image (masks always use nearest). Default 'lanczos3'. */
  kernel?: ResizeKernel;
}

/** Resamples an RGB image to exactly `width x height` (aspect not kept; see `fitCover` for that). */
export async function resizeImage(img: RgbImage, width: number, height: number, opts: ResizeOptions = {}): Promise<RgbImage> {
  assertRgb(img);
  return resizeRaster(img, width, height, opts);
}

/**
 * Any-channel resample with sharp. With 4 channels libvips premultiplies by alpha while resampling, so colour
 * under transparent pixels does not bleed into the result.
 */
export async function resizeRaster<T extends Raster>(img: T, width: number, height: number, opts: ResizeOptions = {}): Promise<T> {
  const channels = channelsOf(img);
  assertPositiveSize(width, height, 'target size');
  if (img.width === width && img.height === height) return { ...img, data: Uint8Array.from(img.data) };
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels } })
    .resize(width, height, { fit: 'fill', kernel: opts.kernel ?? 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || info.width !== width || info.height !== height) {
    throw new Error(`resize produced ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${channels}`);
  }
  return { ...img, width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The pixels inside `box` (which must lie within the raster), any channel count. */
export function crop<T extends Raster>(r: T, box: Box): T {
  const c = channelsOf(r);
  const { x, y, width, height } = box;
  assertPositiveSize(width, height, 'crop box');
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x + width > r.width || y + height > r.height) {
    throw new ImagingError('BAD_ARGUMENT', `crop box ${width}x${height}+${x}+${y} is outside the ${r.width}x${r.height} raster`);
  }
  const out = new Uint8Array(width * height * c);
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * r.width + x) * c;
    out.set(r.data.subarray(from, from + width * c), row * width * c);
  }
  return { ...r, width, height, data: out };
}

/** Mirror left-right, any channel count (use it on an image and its masks alike). */
export function flipHorizontal<T extends Raster>(r: T): T {
  const c = channelsOf(r);
  const { width: w, height: h } = r;
  const out = new Uint8Array(r.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * c,
        d = (y * w + (w - 1 - x)) * c;
      for (let k = 0; k < c; k++) out[d + k] = r.data[s + k]!;
    }
  }
  return { ...r, data: out };
}

/** What `fitCover` did: output = crop of the input, scaled by (scaleX, scaleY). */
export interface FitTransform {
  /** The region of the input that was kept (centred). */
  crop: Box;
  /** Output pixels per input pixel, horizontally and vertically (equal up to rounding of the crop). */
  scaleX: number;
  scaleY: number;
  /** Output size. */
  width: number;
  height: number;
}

/** Maps continuous input coordinates (pixel centre of column i is i + 0.5) to output coordinates. */
export function transformPoint(t: FitTransform, x: number, y: number): { x: number; y: number } {
  return { x: (x - t.crop.x) * t.scaleX, y: (y - t.crop.y) * t.scaleY };
}

export interface Fitted {
  image: RgbImage;
  /** The input masks, transformed identically (nearest), in the same order. */
  masks: Mask[];
  transform: FitTransform;
}

/**
 * "Cover" fit: scales the image so it covers `width x height` keeping its aspect, centre-crops the overflow,
 * and applies the very same crop and scale to every mask, so masks stay aligned with the subject.
 */
export async function fitCover(image: RgbImage, masks: readonly Mask[], width: number, height: number, opts: ResizeOptions = {}): Promise<Fitted> {
  assertRgb(image);
  assertPositiveSize(width, height, 'target size');
  masks.forEach((m, i) => {
    assertMask(m, `mask ${i}`);
    if (m.width !== image.width || m.height !== image.height) {
      throw new ImagingError('SIZE_MISMATCH', `mask ${i} is ${m.width}x${m.height}, image is ${image.width}x${image.height}`);
    }
  });
  const scale = Math.max(width / image.width, height / image.height);
  const cw = Math.min(image.width, Math.max(1, Math.round(width / scale)));
  const ch = Math.min(image.height, Math.max(1, Math.round(height / scale)));
  const box: Box = { x: Math.floor((image.width - cw) / 2), y: Math.floor((image.height - ch) / 2), width: cw, height: ch };
  const cropped = crop(image, box);
  return {
    image: await resizeImage(cropped, width, height, opts),
    masks: masks.map((m) => resizeMask(crop(m, box), width, height)),
    transform: { crop: box, scaleX: width / cw, scaleY: height / ch, width, height },
  };
}

/** `fitCover` to a `size x size` square, the usual backbone input (e.g. 512). */
export function fitToSquare(image: RgbImage, masks: readonly Mask[], size: number, opts: ResizeOptions = {}): Promise<Fitted> {
  return fitCover(image, masks, size, size, opts);
}
