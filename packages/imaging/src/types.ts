import { ImagingError } from './errors.js';

/** 8-bit RGB, interleaved (r,g,b per pixel), rows top to bottom: `data.length === width * height * 3`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** 8-bit RGBA, interleaved, straight (not premultiplied) alpha: `data.length === width * height * 4`. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One byte per pixel, each 0 or 1 (1 = inside the subject/region): `data.length === width * height`. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Any 8-bit interleaved raster; the channel count is `data.length / (width * height)` (1, 3 or 4). */
export interface Raster {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Axis-aligned pixel rectangle: columns `x .. x+width-1`, rows `y .. y+height-1`. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Same shape as packages/diffusion's FloatTensor (structural, to keep imaging free of diffusion). */
export interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

/** Channel count of a raster, checked against its declared size. */
export function channelsOf(r: Raster, what = 'raster'): 1 | 3 | 4 {
  const n = r.width * r.height;
  if (!Number.isInteger(r.width) || !Number.isInteger(r.height) || r.width <= 0 || r.height <= 0) {
    throw new ImagingError('BAD_ARGUMENT', `${what} has invalid size ${r.width}x${r.height}`);
  }
  const c = r.data.length / n;
  if (c !== 1 && c !== 3 && c !== 4) {
    throw new ImagingError('BAD_ARGUMENT', `${what} ${r.width}x${r.height} has ${r.data.length} bytes: not 1, 3 or 4 channels`);
  }
  return c;
}

export function assertRgb(img: RgbImage, what = 'image'): void {
  if (channelsOf(img, what) !== 3) {
    throw new ImagingError('BAD_ARGUMENT', `${what} must be RGB (3 bytes per pixel), got ${img.data.length / (img.width * img.height)}`);
  }
}

export function assertMask(m: Mask, what = 'mask'): void {
  if (channelsOf(m, what) !== 1) throw new ImagingError('BAD_ARGUMENT', `${what} must have 1 byte per pixel`);
}

export function assertSameSize(a: { width: number; height: number }, b: { width: number; height: number }, what: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new ImagingError('SIZE_MISMATCH', `${what}: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  }
}

export function assertPositiveSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImagingError('BAD_ARGUMENT', `${what} must be positive integers, got ${width}x${height}`);
  }
}
