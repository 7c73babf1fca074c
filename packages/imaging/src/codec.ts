import { readFile, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata, Sharp } from 'sharp';
import { ImagingError } from './errors.js';
import { assertRgb, channelsOf, type Raster, type RgbaImage, type RgbImage } from './types.js';

export type ImageType = 'png' | 'jpeg' | 'webp';

export interface DecodeOptions {
  /** Refuse images with more than this many pixels (width x height) before decoding them. Default 40e6. */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 40e6;

/** Image type from magic bytes alone: uploads are untrusted, so file names and MIME types are ignored. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a)
    return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * Opens untrusted bytes in sharp after checking the type and the declared pixel count, so a small file that
 * claims a huge canvas (a decompression bomb) is refused from its header without allocating the canvas.
 */
async function openChecked(bytes: Uint8Array, opts: DecodeOptions): Promise<Sharp> {
  const type = sniffImageType(bytes);
  if (!type) throw new ImagingError('NOT_AN_IMAGE', `not a PNG, JPEG or WebP image (first bytes ${hex(bytes.subarray(0, 8))})`);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels > 0)) throw new ImagingError('BAD_ARGUMENT', `maxPixels must be positive, got ${maxPixels}`);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImagingError('CORRUPT_IMAGE', `cannot read ${type} header: ${(e as Error).message}`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > maxPixels) {
    throw new ImagingError('TOO_LARGE', `${type} image is ${width}x${height} = ${width * height} pixels, limit is ${maxPixels}`);
  }
  // limitInputPixels again as a second line of defence; failOn 'error' still accepts slightly truncated JPEGs.
  return sharp(bytes, { limitInputPixels: Math.floor(maxPixels), failOn: 'error' }).autoOrient();
}

async function rawPixels(pipeline: Sharp, channels: 3 | 4): Promise<{ width: number; height: number; data: Uint8Array }> {
  try {
    const { data, info } = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) throw new Error(`decoder produced ${info.channels} channels, expected ${channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    if (e instanceof ImagingError) throw e;
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new ImagingError('TOO_LARGE', msg);
    throw new ImagingError('CORRUPT_IMAGE', `cannot decode image: ${msg}`);
  }
}

/**
 * Decodes PNG/JPEG/WebP bytes to RGB, EXIF orientation applied. Transparent pixels are composited on white,
 * which is what a viewer shows; use `decodeRgba` when the alpha channel carries meaning (masks).
 */
export async function decode(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<RgbImage> {
  const img = await openChecked(bytes, opts);
  return rawPixels(img.flatten({ background: { r: 255, g: 255, b: 255 } }), 3);
}

/** Decodes to RGBA (alpha 255 where the file has none), EXIF orientation applied. */
export async function decodeRgba(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<RgbaImage> {
  const img = await openChecked(bytes, opts);
  return rawPixels(img.ensureAlpha(1), 4);
}

function toSharp(r: Raster): Sharp {
  const channels = channelsOf(r);
  return sharp(r.data, { raw: { width: r.width, height: r.height, channels } });
}

async function toBytes(s: Sharp): Promise<Uint8Array> {
  const buf = await s.toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

export interface PngOptions {
  /** zlib level 0-9; 6 trades size for speed like most encoders. */
  compressionLevel?: number;
}

/** Lossless PNG of a 1 (gray), 3 (RGB) or 4 (RGBA) channel raster. */
export function encodePng(img: Raster, opts: PngOptions = {}): Promise<Uint8Array> {
  return toBytes(toSharp(img).png({ compressionLevel: opts.compressionLevel ?? 6 }));
}

export interface JpegOptions {
  /** 1-100; default 90. */
  quality?: number;
}

/** JPEG of an RGB image (4:2:0 chroma subsampling, as browsers expect). */
export function encodeJpeg(img: RgbImage, opts: JpegOptions = {}): Promise<Uint8Array> {
  assertRgb(img);
  return toBytes(toSharp(img).jpeg({ quality: opts.quality ?? 90 }));
}

/** Reads and decodes an image file (see `decode`). */
export async function readImage(path: string, opts: DecodeOptions = {}): Promise<RgbImage> {
  return decode(await readFile(path), opts);
}

/** Encodes a raster as PNG and writes it to `path`. */
export async function writePng(path: string, img: Raster, opts: PngOptions = {}): Promise<void> {
  await writeFile(path, await encodePng(img, opts));
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
