/**
 * Backgrounds: a sky and ground as per-pixel gradients, then a few fixed elements (sun, waves, tree, tiles,
 * moon and stars, cactus), in units of the image (0..1 across and down). In the sketch style every colour is
 * washed toward paper and the elements get pencil outlines.
 */
import { capsule, circle, drawShape, ellipse, fillLayer, Layer, mix, polygon, roundRect, type Frame, type RGB, type Shape } from './raster.js';
import type { ContextName, StyleName } from './vocab.js';

export const PAPER: RGB = [250, 247, 238];
const PENCIL: RGB = [110, 110, 115];
/** How far the sketch style washes a background colour toward paper. */
const SKETCH_WASH = 0.6;

interface Backdrop {
  /** Colour at height y (0 top, 1 bottom) and x; writes into out. */
  base(x: number, y: number, out: Float64Array): void;
  elements: Array<[Shape, RGB]>;
}

const ramp = (out: Float64Array, a: RGB, b: RGB, t: number) => {
  out[0] = a[0] + (b[0] - a[0]) * t;
  out[1] = a[1] + (b[1] - a[1]) * t;
  out[2] = a[2] + (b[2] - a[2]) * t;
};

/** Sky from `top` to `low` above `horizon`, ground from `near` to `far` below it. */
function skyAndGround(horizon: number, top: RGB, low: RGB, far: RGB, near: RGB) {
  return (_x: number, y: number, out: Float64Array) => {
    if (y < horizon) ramp(out, top, low, y / horizon);
    else ramp(out, far, near, (y - horizon) / (1 - horizon));
  };
}

const STARS = [0.08, 0.1, 0.22, 0.06, 0.35, 0.18, 0.52, 0.07, 0.63, 0.22, 0.93, 0.3, 0.12, 0.33, 0.44, 0.35, 0.72, 0.05, 0.28, 0.45, 0.86, 0.45];
const FLAKES = [0.1, 0.12, 0.3, 0.08, 0.45, 0.2, 0.62, 0.1, 0.8, 0.22, 0.92, 0.08, 0.2, 0.3, 0.55, 0.36, 0.72, 0.4, 0.05, 0.45, 0.38, 0.46];

function pairs(flat: number[], r: number): Shape[] {
  const out: Shape[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(circle(flat[i]!, flat[i + 1]!, r));
  return out;
}

const BACKDROPS: Record<ContextName, Backdrop> = {
  'grass field': {
    base: skyAndGround(0.55, [105, 175, 240], [190, 225, 250], [120, 190, 80], [55, 140, 45]),
    elements: [
      [circle(0.86, 0.13, 0.07), [255, 215, 70]],
      ...[0.06, 0.15, 0.83, 0.94].map((x, i): [Shape, RGB] => [
        polygon([x - 0.03, 0.72 + i * 0.04, x, 0.62 + i * 0.04, x + 0.03, 0.72 + i * 0.04]),
        [40, 115, 35],
      ]),
      [circle(0.1, 0.9, 0.018), [250, 250, 250]],
      [circle(0.9, 0.93, 0.018), [250, 90, 120]],
    ],
  },
  beach: {
    base: (x, y, out) => {
      if (y < 0.45) ramp(out, [95, 175, 245], [185, 225, 250], y / 0.45);
      else if (y < 0.6) ramp(out, [30, 105, 195], [60, 160, 210], (y - 0.45) / 0.15);
      else ramp(out, [240, 218, 165], [222, 190, 130], (y - 0.6) / 0.4);
    },
    elements: [
      [circle(0.14, 0.13, 0.07), [255, 225, 80]],
      [capsule(0.1, 0.5, 0.26, 0.5, 0.008), [235, 245, 255]],
      [capsule(0.62, 0.54, 0.82, 0.54, 0.008), [235, 245, 255]],
      [ellipse(0.5, 0.61, 0.6, 0.02), [245, 240, 225]],
    ],
  },
  snow: {
    base: skyAndGround(0.55, [185, 198, 218], [225, 230, 240], [236, 240, 250], [250, 252, 255]),
    elements: [
      [roundRect(0.1, 0.6, 0.015, 0.05), [95, 60, 35]],
      [polygon([0.0, 0.58, 0.1, 0.3, 0.2, 0.58]), [35, 100, 60]],
      [polygon([0.05, 0.4, 0.1, 0.3, 0.15, 0.4]), [245, 248, 255]],
      ...pairs(FLAKES, 0.011).map((s): [Shape, RGB] => [s, [255, 255, 255]]),
    ],
  },
  kitchen: {
    base: (x, y, out) => {
      if (y < 0.62) {
        // cream tiles with grout lines every 0.125
        const gx = Math.abs(x * 8 - Math.round(x * 8));
        const gy = Math.abs(y * 8 - Math.round(y * 8));
        ramp(out, [150, 215, 210], [245, 250, 248], gx < 0.07 || gy < 0.07 ? 1 : 0);
      } else if (y < 0.66) ramp(out, [90, 55, 30], [90, 55, 30], 0);
      else ramp(out, [160, 100, 55], [130, 80, 45], (y - 0.66) / 0.34);
    },
    elements: [
      [roundRect(0.78, 0.25, 0.12, 0.11, 0.01), [170, 215, 245]],
      [roundRect(0.78, 0.25, 0.005, 0.11), [255, 255, 255]],
      [roundRect(0.15, 0.33, 0.1, 0.012), [120, 75, 40]],
      [roundRect(0.11, 0.27, 0.035, 0.05, 0.01), [200, 60, 50]],
    ],
  },
  'night sky': {
    base: skyAndGround(0.64, [10, 14, 45], [40, 45, 100], [35, 55, 50], [20, 35, 30]),
    elements: [
      [circle(0.82, 0.15, 0.075), [245, 240, 195]],
      [circle(0.85, 0.13, 0.065), [14, 19, 54]],
      ...pairs(STARS, 0.009).map((s): [Shape, RGB] => [s, [255, 250, 215]]),
    ],
  },
  desert: {
    base: skyAndGround(0.58, [250, 215, 150], [252, 240, 205], [235, 180, 100], [215, 145, 70]),
    elements: [
      [circle(0.16, 0.16, 0.09), [255, 245, 190]],
      [ellipse(0.3, 0.62, 0.38, 0.07), [240, 195, 120]],
      [capsule(0.88, 0.5, 0.88, 0.74, 0.028), [70, 150, 70]],
      [capsule(0.83, 0.58, 0.83, 0.52, 0.018), [70, 150, 70]],
      [capsule(0.83, 0.6, 0.88, 0.6, 0.018), [70, 150, 70]],
      [capsule(0.93, 0.55, 0.93, 0.48, 0.018), [70, 150, 70]],
      [capsule(0.93, 0.57, 0.88, 0.57, 0.018), [70, 150, 70]],
    ],
  },
};

/** Draws the context into an opaque layer of the scene's size. */
export function drawBackground(layer: Layer, context: ContextName, style: StyleName): void {
  const backdrop = BACKDROPS[context];
  const sketch = style === 'sketch';
  if (sketch) {
    fillLayer(layer, (x, y, out) => {
      backdrop.base(x, y, out);
      ramp(out, [out[0]!, out[1]!, out[2]!], PAPER, SKETCH_WASH);
    });
  } else fillLayer(layer, backdrop.base);
  const frame: Frame = { scale: layer.width, rot: 0, mirror: false, tx: 0, ty: 0 };
  const stroke = sketch ? { rgb: PENCIL, width: Math.max(0.6, layer.width / 110) } : undefined;
  for (const [shape, rgb] of backdrop.elements) drawShape(layer, frame, shape, sketch ? mix(rgb, PAPER, SKETCH_WASH) : rgb, stroke);
}
