import { decodeRgba, type DecodeOptions } from './codec.js';
import { ImagingError } from './errors.js';
import { assertMask, assertPositiveSize, assertSameSize, channelsOf, type Box, type Mask, type Raster, type RgbImage } from './types.js';

/** An all-zero mask. */
export function emptyMask(width: number, height: number): Mask {
  assertPositiveSize(width, height, 'mask size');
  return { width, height, data: new Uint8Array(width * height) };
}

/**
 * Mask from decoded pixels. The rule, so any common mask file works:
 * - 4 channels whose alpha is not uniformly 255: the alpha channel is the mask (a cut-out PNG);
 * - otherwise (gray, RGB, opaque RGBA): luma 0.299 R + 0.587 G + 0.114 B (or the gray value) is the mask.
 * A pixel is set when that value is >= `threshold` (default 128).
 */
export function maskFromImage(img: Raster, threshold = 128): Mask {
  const c = channelsOf(img, 'mask image');
  const n = img.width * img.height;
  const d = img.data;
  const out = new Uint8Array(n);
  let alphaVaries = false;
  if (c === 4) for (let i = 0; i < n && !alphaVaries; i++) alphaVaries = d[i * 4 + 3] !== 255;
  for (let i = 0; i < n; i++) {
    let v: number;
    if (c === 1) v = d[i]!;
    else if (alphaVaries) v = d[i * 4 + 3]!;
    else v = 0.299 * d[i * c]! + 0.587 * d[i * c + 1]! + 0.114 * d[i * c + 2]!;
    out[i] = v >= threshold ? 1 : 0;
  }
  return { width: img.width, height: img.height, data: out };
}

/** Decodes mask file bytes (PNG/JPEG/WebP) and applies `maskFromImage`'s rule. */
export async function decodeMask(bytes: Uint8Array, opts: DecodeOptions & { threshold?: number } = {}): Promise<Mask> {
  return maskFromImage(await decodeRgba(bytes, opts), opts.threshold ?? 128);
}

/** Mask of the values `>= threshold` in a scalar map (an attention map, a soft mask) of `width x height`. */
export function binarize(map: ArrayLike<number>, width: number, height: number, threshold: number): Mask {
  assertPositiveSize(width, height, 'map size');
  if (map.length !== width * height) throw new ImagingError('SIZE_MISMATCH', `map has ${map.length} values, ${width}x${height} needs ${width * height}`);
  const out = new Uint8Array(map.length);
  for (let i = 0; i < map.length; i++) out[i] = map[i]! >= threshold ? 1 : 0;
  return { width, height, data: out };
}

/** Black (0) / white (255) RGB image of a mask, for saving or viewing. */
export function maskToImage(mask: Mask): RgbImage {
  assertMask(mask);
  const out = new Uint8Array(mask.data.length * 3);
  for (let i = 0; i < mask.data.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = mask.data[i] ? 255 : 0;
  return { width: mask.width, height: mask.height, data: out };
}

/**
 * Nearest-neighbour resize to any size, sampling the source pixel under each target pixel's centre, so masks
 * stay binary and a mask resized like its image (see `fitToSquare`) still covers the same content.
 */
export function resizeMask(mask: Mask, width: number, height: number): Mask {
  assertMask(mask);
  assertPositiveSize(width, height, 'target size');
  const out = new Uint8Array(width * height);
  const sx = mask.width / width;
  const sy = mask.height / height;
  const cols = new Int32Array(width);
  for (let x = 0; x < width; x++) cols[x] = Math.min(mask.width - 1, Math.floor((x + 0.5) * sx));
  for (let y = 0; y < height; y++) {
    const row = Math.min(mask.height - 1, Math.floor((y + 0.5) * sy)) * mask.width;
    for (let x = 0; x < width; x++) out[y * width + x] = mask.data[row + cols[x]!]!;
  }
  return { width, height, data: out };
}

function combine(masks: Mask[], op: (a: number, b: number) => number, what: string): Mask {
  const [first, ...rest] = masks;
  if (!first) throw new ImagingError('BAD_ARGUMENT', `${what} of no masks`);
  assertMask(first);
  const out = Uint8Array.from(first.data);
  for (const m of rest) {
    assertMask(m);
    assertSameSize(first, m, what);
    for (let i = 0; i < out.length; i++) out[i] = op(out[i]!, m.data[i]!);
  }
  return { width: first.width, height: first.height, data: out };
}

/** Pixels set in any of the masks (all the same size). */
export const union = (...masks: Mask[]): Mask => combine(masks, (a, b) => a | b, 'union');

/** Pixels set in every mask (all the same size). */
export const intersection = (...masks: Mask[]): Mask => combine(masks, (a, b) => a & b, 'intersection');

/** Pixels set in `a` but not in `b`. */
export function subtract(a: Mask, b: Mask): Mask {
  return combine([a, b], (x, y) => x & (y ^ 1), 'subtract');
}

/** Pixels not set. */
export function invert(mask: Mask): Mask {
  assertMask(mask);
  return { width: mask.width, height: mask.height, data: mask.data.map((v) => v ^ 1) };
}

/** Number of set pixels. */
export function area(mask: Mask): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) n += mask.data[i]!;
  return n;
}

/** Intersection over union of two same-size masks (1 when both are empty). */
export function iou(a: Mask, b: Mask): number {
  const u = area(union(a, b));
  return u === 0 ? 1 : area(intersection(a, b)) / u;
}

/** Tightest box around the set pixels, or null for an empty mask. */
export function boundingBox(mask: Mask): Box | null {
  assertMask(mask);
  const { width: w, height: h, data } = mask;
  let x0 = w,
    y0 = h,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!data[y * w + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}
