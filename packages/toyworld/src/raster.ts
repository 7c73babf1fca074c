/**
 * The rasteriser: shapes are signed distance functions in their own units (negative inside), drawn through a
 * similarity transform (scale, rotation, mirror, translation) onto float layers. A pixel's coverage is
 * clamp(0.5 - d, 0, 1) with d the signed distance from the pixel centre in pixels (a box filter of the edge),
 * which anti-aliases every edge with one evaluation per pixel instead of supersampling. Only +, -, *, /, sqrt
 * run per pixel, all exact in IEEE doubles, so a render is bit-identical on every machine; the rotation's
 * cos/sin are computed once per subject.
 */

export type RGB = readonly [number, number, number];

/** A shape in its own units: a signed distance (negative inside) and a bounding box [x0, y0, x1, y1]. */
export interface Shape {
  sdf(x: number, y: number): number;
  readonly bbox: readonly [number, number, number, number];
}

const { sqrt, abs, min, max, floor } = Math;

/** An ellipse centred at (cx, cy) with radii rx, ry, turned by `rot` radians (clockwise on screen). */
export function ellipse(cx: number, cy: number, rx: number, ry: number, rot = 0): Shape {
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  const ia2 = 1 / (rx * rx);
  const ib2 = 1 / (ry * ry);
  // the exact half extents of the turned ellipse
  const ex = sqrt(rx * rx * c * c + ry * ry * s * s);
  const ey = sqrt(rx * rx * s * s + ry * ry * c * c);
  return {
    // first-order distance f / |grad f|: exact on the boundary, which is all coverage needs
    sdf(x, y) {
      const dx = x - cx;
      const dy = y - cy;
      const u = c * dx + s * dy;
      const v = -s * dx + c * dy;
      const f = u * u * ia2 + v * v * ib2 - 1;
      const g = 2 * sqrt(u * u * ia2 * ia2 + v * v * ib2 * ib2);
      return g > 1e-9 ? f / g : -min(rx, ry);
    },
    bbox: [cx - ex, cy - ey, cx + ex, cy + ey],
  };
}

export function circle(cx: number, cy: number, r: number): Shape {
  return {
    sdf: (x, y) => sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - r,
    bbox: [cx - r, cy - r, cx + r, cy + r],
  };
}

/** A box of half sizes (hw, hh) with corner radius `r`, centred at (cx, cy), turned by `rot`. */
export function roundRect(cx: number, cy: number, hw: number, hh: number, r = 0, rot = 0): Shape {
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  const ex = hw - r;
  const ey = hh - r;
  const bx = hw * abs(c) + hh * abs(s);
  const by = hw * abs(s) + hh * abs(c);
  return {
    sdf(x, y) {
      const dx = x - cx;
      const dy = y - cy;
      const qx = abs(c * dx + s * dy) - ex;
      const qy = abs(-s * dx + c * dy) - ey;
      const ox = max(qx, 0);
      const oy = max(qy, 0);
      return sqrt(ox * ox + oy * oy) + min(max(qx, qy), 0) - r;
    },
    bbox: [cx - bx, cy - by, cx + bx, cy + by],
  };
}

/** A segment from (ax, ay) to (bx, by) thickened to radius r: limbs, tails, lines. */
export function capsule(ax: number, ay: number, bx: number, by: number, r: number): Shape {
  const ex = bx - ax;
  const ey = by - ay;
  const len2 = ex * ex + ey * ey;
  return {
    sdf(x, y) {
      const px = x - ax;
      const py = y - ay;
      const t = len2 > 0 ? max(0, min(1, (px * ex + py * ey) / len2)) : 0;
      const qx = px - t * ex;
      const qy = py - t * ey;
      return sqrt(qx * qx + qy * qy) - r;
    },
    bbox: [min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r],
  };
}

/** A ring (annulus) of mid radius R and half thickness t. */
export function ring(cx: number, cy: number, R: number, t: number): Shape {
  return {
    sdf: (x, y) => abs(sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - R) - t,
    bbox: [cx - R - t, cy - R - t, cx + R + t, cy + R + t],
  };
}

/** A simple polygon from flat coordinates [x0, y0, x1, y1, ...]; inside by the even-odd rule. */
export function polygon(points: readonly number[]): Shape {
  const n = points.length / 2;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = min(x0, points[2 * i]!);
    x1 = max(x1, points[2 * i]!);
    y0 = min(y0, points[2 * i + 1]!);
    y1 = max(y1, points[2 * i + 1]!);
  }
  const p = Float64Array.from(points);
  return {
    sdf(x, y) {
      let best = Infinity;
      let inside = false;
      for (let i = 0, j = n - 1; i < n; j = i++) {
        const ax = p[2 * j]!;
        const ay = p[2 * j + 1]!;
        const bx = p[2 * i]!;
        const by = p[2 * i + 1]!;
        const ex = bx - ax;
        const ey = by - ay;
        const wx = x - ax;
        const wy = y - ay;
        const t = max(0, min(1, (wx * ex + wy * ey) / (ex * ex + ey * ey)));
        const qx = wx - t * ex;
        const qy = wy - t * ey;
        best = min(best, qx * qx + qy * qy);
        if (ay > y !== by > y && x < ax + ((y - ay) * ex) / ey) inside = !inside;
      }
      const d = sqrt(best);
      return inside ? -d : d;
    },
    bbox: [x0, y0, x1, y1],
  };
}

/** Local shape units to pixels: p_px = t + scale * R(rot) * (mirror ? (-u, v) : (u, v)). */
export interface Frame {
  scale: number;
  rot: number;
  mirror: boolean;
  tx: number;
  ty: number;
}

/** A float RGB layer with coverage: colours premultiplied by alpha, both in [0, 255] and [0, 1]. */
export class Layer {
  readonly rgb: Float32Array;
  readonly alpha: Float32Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Float32Array(width * height * 3);
    this.alpha = new Float32Array(width * height);
  }
}

/**
 * Writes the colour of local point (u, v) into out[0..2]. `depth` is how far inside the shape the pixel is, in
 * pixels (>= 0 inside), for shading.
 */
export type PaintFn = (u: number, v: number, depth: number, out: Float64Array) => void;

export interface Stroke {
  rgb: RGB;
  /** Line width in pixels (centred on the edge). */
  width: number;
}

const scratch = new Float64Array(3);

/** Fills `shape` (in frame units) with `paint`, then strokes its edge if `stroke` is given. */
export function drawShape(layer: Layer, frame: Frame, shape: Shape, paint: PaintFn | RGB, stroke?: Stroke): void {
  const { width: W, height: H, rgb, alpha } = layer;
  const { scale, tx, ty } = frame;
  const c = Math.cos(frame.rot);
  const s = Math.sin(frame.rot);
  const m = frame.mirror ? -1 : 1;
  const half = stroke ? stroke.width / 2 : 0;
  const margin = half + 1;
  // pixel bounding box of the transformed local box, widened by the stroke
  const [bx0, by0, bx1, by1] = shape.bbox;
  let px0 = Infinity;
  let py0 = Infinity;
  let px1 = -Infinity;
  let py1 = -Infinity;
  for (const [u, v] of [
    [bx0, by0],
    [bx1, by0],
    [bx0, by1],
    [bx1, by1],
  ] as const) {
    const x = tx + scale * (c * u * m - s * v);
    const y = ty + scale * (s * u * m + c * v);
    px0 = min(px0, x);
    px1 = max(px1, x);
    py0 = min(py0, y);
    py1 = max(py1, y);
  }
  const xs = max(0, floor(px0 - margin));
  const xe = min(W - 1, floor(px1 + margin));
  const ys = max(0, floor(py0 - margin));
  const ye = min(H - 1, floor(py1 + margin));
  const fixed = typeof paint === 'function' ? null : paint;
  const inv = 1 / scale;
  for (let py = ys; py <= ye; py++) {
    const dy = (py + 0.5 - ty) * inv;
    for (let px = xs; px <= xe; px++) {
      const dx = (px + 0.5 - tx) * inv;
      const u = (c * dx + s * dy) * m;
      const v = -s * dx + c * dy;
      const d = shape.sdf(u, v) * scale;
      if (d >= margin) continue;
      const i = py * W + px;
      const cover = d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
      if (cover > 0) {
        if (fixed) {
          scratch[0] = fixed[0];
          scratch[1] = fixed[1];
          scratch[2] = fixed[2];
        } else (paint as PaintFn)(u, v, -d, scratch);
        const keep = 1 - cover;
        rgb[3 * i] = rgb[3 * i]! * keep + scratch[0]! * cover;
        rgb[3 * i + 1] = rgb[3 * i + 1]! * keep + scratch[1]! * cover;
        rgb[3 * i + 2] = rgb[3 * i + 2]! * keep + scratch[2]! * cover;
        alpha[i] = alpha[i]! * keep + cover;
      }
      if (stroke) {
        const e = abs(d) - half;
        const sc = e <= -0.5 ? 1 : e >= 0.5 ? 0 : 0.5 - e;
        if (sc > 0) {
          const keep = 1 - sc;
          rgb[3 * i] = rgb[3 * i]! * keep + stroke.rgb[0] * sc;
          rgb[3 * i + 1] = rgb[3 * i + 1]! * keep + stroke.rgb[1] * sc;
          rgb[3 * i + 2] = rgb[3 * i + 2]! * keep + stroke.rgb[2] * sc;
          alpha[i] = alpha[i]! * keep + sc;
        }
      }
    }
  }
}

/** Darkens the pixels under `shape` by `amount` (0..1) times their coverage: shadows. */
export function darkenShape(layer: Layer, frame: Frame, shape: Shape, amount: number): void {
  const { width: W, height: H, rgb } = layer;
  const { scale, tx, ty } = frame;
  const [bx0, by0, bx1, by1] = shape.bbox;
  const xs = max(0, floor(tx + scale * bx0 - 1));
  const xe = min(W - 1, floor(tx + scale * bx1 + 1));
  const ys = max(0, floor(ty + scale * by0 - 1));
  const ye = min(H - 1, floor(ty + scale * by1 + 1));
  for (let py = ys; py <= ye; py++) {
    for (let px = xs; px <= xe; px++) {
      const d = shape.sdf((px + 0.5 - tx) / scale, (py + 0.5 - ty) / scale) * scale;
      const cover = d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
      if (cover <= 0) continue;
      const f = 1 - amount * cover;
      const i = 3 * (py * W + px);
      rgb[i] = rgb[i]! * f;
      rgb[i + 1] = rgb[i + 1]! * f;
      rgb[i + 2] = rgb[i + 2]! * f;
    }
  }
}

/** Sets every pixel of an opaque layer from a function of the pixel centre in [0, 1] units of the width/height. */
export function fillLayer(layer: Layer, paint: (x: number, y: number, out: Float64Array) => void): void {
  const { width: W, height: H, rgb, alpha } = layer;
  for (let py = 0; py < H; py++) {
    for (let px = 0; px < W; px++) {
      paint((px + 0.5) / W, (py + 0.5) / H, scratch);
      const i = py * W + px;
      rgb[3 * i] = scratch[0]!;
      rgb[3 * i + 1] = scratch[1]!;
      rgb[3 * i + 2] = scratch[2]!;
      alpha[i] = 1;
    }
  }
}

/** a + (b - a) * t per channel. */
export function mix(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Relative luminance in [0, 1] of sRGB bytes (a plain weighted sum: only for choosing contrasts). */
export function luminance(c: RGB): number {
  return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255;
}
