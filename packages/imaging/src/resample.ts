import { ImagingError } from './errors.js';
import { assertPositiveSize } from './types.js';

/**
 * Bilinear resize of a single-channel float map with half-pixel centres and clamped edges (PyTorch's
 * `interpolate(mode='bilinear', align_corners=False)`), e.g. a 16x16 attention map up to 512x512.
 */
export function resizeMap(map: ArrayLike<number>, width: number, height: number, toWidth: number, toHeight: number): Float32Array {
  assertPositiveSize(width, height, 'map size');
  assertPositiveSize(toWidth, toHeight, 'target size');
  if (map.length !== width * height) throw new ImagingError('SIZE_MISMATCH', `map has ${map.length} values, ${width}x${height} needs ${width * height}`);
  const out = new Float32Array(toWidth * toHeight);
  const x0 = new Int32Array(toWidth),
    x1 = new Int32Array(toWidth),
    fx = new Float32Array(toWidth);
  for (let x = 0; x < toWidth; x++) {
    const sx = Math.max(0, ((x + 0.5) * width) / toWidth - 0.5);
    x0[x] = Math.min(width - 1, Math.floor(sx));
    x1[x] = Math.min(width - 1, x0[x]! + 1);
    fx[x] = sx - x0[x]!;
  }
  for (let y = 0; y < toHeight; y++) {
    const sy = Math.max(0, ((y + 0.5) * height) / toHeight - 0.5);
    const y0 = Math.min(height - 1, Math.floor(sy));
    const y1 = Math.min(height - 1, y0 + 1);
    const fy = sy - y0;
    const r0 = y0 * width,
      r1 = y1 * width;
    for (let x = 0; x < toWidth; x++) {
      const a = x0[x]!,
        b = x1[x]!,
        t = fx[x]!;
      const top = map[r0 + a]! * (1 - t) + map[r0 + b]! * t;
      const bottom = map[r1 + a]! * (1 - t) + map[r1 + b]! * t;
      out[y * toWidth + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
