/**
 * CLIP's image preprocessing as transformers' CLIPImageProcessor does it: resize the shortest side to
 * `shortestEdge` with PIL's bicubic filter (antialiased when shrinking, 8-bit result), centre crop, scale
 * to [0,1], normalise per channel. Matching it matters: CLIP scores shift with the preprocessing.
 */
import type { RgbImage } from '../types.js';

export interface ClipImageConfig {
  /** Target of the shortest side (224 for ViT-B/32 and ViT-L/14). */
  shortestEdge: number;
  cropHeight: number;
  cropWidth: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const CLIP_IMAGE_DEFAULTS: ClipImageConfig = {
  shortestEdge: 224,
  cropHeight: 224,
  cropWidth: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};

/** Config from a preprocessor_config.json object (HF's int or {shortest_edge}/{height,width} forms). */
export function parseClipImageConfig(json: Record<string, unknown> | undefined): ClipImageConfig {
  if (!json) return CLIP_IMAGE_DEFAULTS;
  const size = json['size'],
    crop = json['crop_size'];
  const shortestEdge =
    typeof size === 'number'
      ? size
      : typeof (size as { shortest_edge?: unknown })?.shortest_edge === 'number'
        ? (size as { shortest_edge: number }).shortest_edge
        : CLIP_IMAGE_DEFAULTS.shortestEdge;
  const cropH =
    typeof crop === 'number' ? crop : typeof (crop as { height?: unknown })?.height === 'number' ? (crop as { height: number }).height : shortestEdge;
  const cropW = typeof crop === 'number' ? crop : typeof (crop as { width?: unknown })?.width === 'number' ? (crop as { width: number }).width : shortestEdge;
  const triple = (v: unknown, d: [number, number, number]): [number, number, number] =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number') ? (v as [number, number, number]) : d;
  return {
    shortestEdge,
    cropHeight: cropH,
    cropWidth: cropW,
    mean: triple(json['image_mean'], CLIP_IMAGE_DEFAULTS.mean),
    std: triple(json['image_std'], CLIP_IMAGE_DEFAULTS.std),
  };
}

/** PIL's bicubic kernel (a = -0.5). */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** PIL's fixed-point weights for 8-bit images: 32 - 8 - 2 bits of fraction. */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

/**
 * For each output index: first input index and weights (PIL's precompute_coeffs, normalised, then
 * rounded to PRECISION_BITS fixed point as normalize_coeffs_8bpc does, so results match PIL bit for bit).
 */
function coefficients(inSize: number, outSize: number): { start: number; weights: Int32Array }[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const out: { start: number; weights: Int32Array }[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = new Float64Array(xmax - xmin);
    let sum = 0;
    for (let x = xmin; x < xmax; x++) sum += w[x - xmin] = bicubic((x - center + 0.5) / filterScale);
    if (sum !== 0) for (let k = 0; k < w.length; k++) w[k]! /= sum;
    out.push({ start: xmin, weights: Int32Array.from(w, (k) => (k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE))) });
  }
  return out;
}

/** PIL's clip8: the fixed-point sum (started at one half) shifted down, clamped to 0..255. */
const clip8 = (sum: number) => {
  const v = Math.floor(sum / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** PIL `Image.resize(size, BICUBIC)` on 8-bit RGB: horizontal pass, then vertical, each to 8 bits (PIL 9 semantics). */
export function resizeBicubicPil(img: RgbImage, width: number, height: number): RgbImage {
  let cur = img;
  if (width !== img.width) {
    const cs = coefficients(img.width, width);
    const out = new Uint8Array(width * img.height * 3);
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < width; x++) {
        const { start, weights } = cs[x]!;
        for (let c = 0; c < 3; c++) {
          let s = ONE / 2;
          for (let k = 0; k < weights.length; k++) s += weights[k]! * img.data[(y * img.width + start + k) * 3 + c]!;
          out[(y * width + x) * 3 + c] = clip8(s);
        }
      }
    }
    cur = { width, height: img.height, data: out };
  }
  if (height !== cur.height) {
    const cs = coefficients(cur.height, height);
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      const { start, weights } = cs[y]!;
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let s = ONE / 2;
          for (let k = 0; k < weights.length; k++) s += weights[k]! * cur.data[((start + k) * width + x) * 3 + c]!;
          out[(y * width + x) * 3 + c] = clip8(s);
        }
      }
    }
    cur = { width, height, data: out };
  }
  return cur;
}

/** Size after resizing the shortest side to `edge` (HF: the long side is truncated, not rounded). */
export function shortestEdgeSize(width: number, height: number, edge: number): { width: number; height: number } {
  return width <= height ? { width: edge, height: Math.trunc((edge * height) / width) } : { width: Math.trunc((edge * width) / height), height: edge };
}

/** pixel_values of one image: [3, cropHeight, cropWidth] float32, channel-major. */
export function clipPreprocess(img: RgbImage, config: ClipImageConfig = CLIP_IMAGE_DEFAULTS): Float32Array {
  const size = shortestEdgeSize(img.width, img.height, config.shortestEdge);
  const resized = resizeBicubicPil(img, size.width, size.height);
  const { cropHeight: ch, cropWidth: cw } = config;
  // HF center_crop: top-left at floor((orig - crop) / 2); the shortest-edge resize makes the image at least crop-sized
  // only when crop <= shortestEdge, so pad with zeros beyond the image as HF does.
  const top = Math.floor((resized.height - ch) / 2),
    left = Math.floor((resized.width - cw) / 2);
  const out = new Float32Array(3 * ch * cw);
  for (let c = 0; c < 3; c++) {
    const mean = config.mean[c]!,
      std = config.std[c]!;
    for (let y = 0; y < ch; y++) {
      const sy = y + top;
      for (let x = 0; x < cw; x++) {
        const sx = x + left;
        const inside = sy >= 0 && sy < resized.height && sx >= 0 && sx < resized.width;
        const v = inside ? resized.data[(sy * resized.width + sx) * 3 + c]! / 255 : 0;
        out[(c * ch + y) * cw + x] = (v - mean) / std;
      }
    }
  }
  return out;
}
