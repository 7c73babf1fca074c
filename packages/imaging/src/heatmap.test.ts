import { colormapColor, heatmapOverlay } from './heatmap.js';
import { solid } from './testing/shapes.js';
import type { RgbImage } from './types.js';

const argmax = (img: RgbImage, score: (r: number, g: number, b: number) => number) => {
  let best = -Infinity,
    at = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const s = score(img.data[i * 3]!, img.data[i * 3 + 1]!, img.data[i * 3 + 2]!);
    if (s > best) [best, at] = [s, i];
  }
  return { x: at % img.width, y: Math.floor(at / img.width) };
};

describe('heatmapOverlay', () => {
  // 8x8 map peaking at column 6, row 2 (falling off around it), on a 64x64 image: that map pixel's centre
  // is at (51.5, 19.5) in image pixels (8x upsampling, half-pixel centres)
  const map = new Float32Array(64);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) map[y * 8 + x] = Math.exp(-((x - 6) ** 2 + (y - 2) ** 2));

  it('is brightest where the map peaks (viridis luminance rises with the value)', () => {
    const out = heatmapOverlay(solid(64, 64, [0, 0, 0]), map, 8, 8, { alpha: 1 });
    const p = argmax(out, (r, g, b) => 0.299 * r + 0.587 * g + 0.114 * b);
    expect(Math.hypot(p.x - 51.5, p.y - 19.5)).toBeLessThanOrEqual(1);
    expect(Array.from(out.data.subarray(63 * 64 * 3, 63 * 64 * 3 + 3))).toEqual(colormapColor(0)); // far corner: ~0
  });

  it("is dark red (jet's top) around the peak, and independent of the map scale", () => {
    const base = solid(64, 64, [0, 0, 0]);
    const out = heatmapOverlay(base, map, 8, 8, { colormap: 'jet', alpha: 1 });
    let n = 0,
      sx = 0,
      sy = 0; // centroid of jet's dark-red band, t > ~0.86
    for (let i = 0; i < 64 * 64; i++) {
      if (out.data[i * 3]! > 100 && out.data[i * 3 + 1]! < 10 && out.data[i * 3 + 2]! < 10) [n, sx, sy] = [n + 1, sx + (i % 64), sy + Math.floor(i / 64)];
    }
    expect(n).toBeGreaterThanOrEqual(4);
    expect(Math.hypot(sx / n - 51.5, sy / n - 19.5)).toBeLessThanOrEqual(1);
    const scaled = heatmapOverlay(
      base,
      map.map((v) => v * 2 ** -20),
      8,
      8,
      { colormap: 'jet', alpha: 1 },
    );
    expect(Buffer.from(scaled.data).equals(Buffer.from(out.data))).toBe(true);
  });

  it('alpha 0 leaves the image; an all-zero map is the colormap bottom', () => {
    const img = solid(16, 16, [10, 20, 30]);
    expect(Buffer.from(heatmapOverlay(img, map, 8, 8, { alpha: 0 }).data).equals(Buffer.from(img.data))).toBe(true);
    const flat = heatmapOverlay(img, new Float32Array(64), 8, 8, { alpha: 1 });
    expect(Array.from(flat.data.subarray(0, 3))).toEqual(colormapColor(0));
    expect(colormapColor(0)).toEqual([68, 1, 84]);
    expect(colormapColor(0, 'jet')).toEqual([0, 0, 128]);
  });

  it('refuses a map that does not match its stated size', () => {
    expect(() => heatmapOverlay(solid(4, 4, [0, 0, 0]), new Float32Array(10), 3, 3)).toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
  });
});
