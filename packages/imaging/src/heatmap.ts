import { ImagingError } from './errors.js';
import { resizeMap } from './resample.js';
import { assertRgb, type RgbImage } from './types.js';

export type Colormap = 'viridis' | 'jet';

// matplotlib's viridis sampled at 0, 1/8, ..., 1; linear interpolation between stops is visually faithful.
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [71, 45, 123],
  [59, 82, 139],
  [44, 114, 142],
  [33, 145, 140],
  [40, 174, 128],
  [94, 201, 98],
  [173, 220, 48],
  [253, 231, 37],
];

/** Colour of t in [0,1] (clamped) under the colormap, as [r,g,b] 0-255. */
export function colormapColor(t: number, map: Colormap = 'viridis'): [number, number, number] {
  const v = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  if (map === 'jet') {
    const ch = (c: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - c))));
    return [ch(3), ch(2), ch(1)];
  }
  const f = v * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const a = VIRIDIS[i]!,
    b = VIRIDIS[i + 1]!,
    w = f - i;
  return [0, 1, 2].map((k) => Math.round(a[k]! * (1 - w) + b[k]! * w)) as [number, number, number];
}

export interface HeatmapOptions {
  /** Opacity of the colour layer, 0..1. Default 0.5. */
  alpha?: number;
  /** Default 'viridis' (perceptually uniform; 'jet' for papers that use it). */
  colormap?: Colormap;
}

/**
 * Overlays a scalar map (row-major `height x width`, e.g. a token's cross-attention map) on an image: the map
 * is divided by its maximum (negatives clamp to 0; an all-zero map stays 0), upsampled bilinearly to the
 * image size, coloured, and blended with opacity `alpha`.
 */
export function heatmapOverlay(image: RgbImage, map: Float32Array, height: number, width: number, opts: HeatmapOptions = {}): RgbImage {
  assertRgb(image);
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new ImagingError('BAD_ARGUMENT', `heatmap alpha must be in [0,1], got ${alpha}`);
  let max = 0;
  for (const v of map) if (v > max) max = v;
  const up = resizeMap(map, width, height, image.width, image.height);
  const lut = Array.from({ length: 256 }, (_, i) => colormapColor(i / 255, opts.colormap));
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < up.length; i++) {
    const t = max > 0 ? Math.max(0, up[i]! / max) : 0;
    const c = lut[Math.min(255, Math.round(t * 255))]!;
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round((1 - alpha) * image.data[i * 3 + k]! + alpha * c[k]!);
  }
  return { width: image.width, height: image.height, data: out };
}
