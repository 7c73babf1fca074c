import { ImagingError } from './errors.js';
import { invert } from './mask.js';
import { assertMask, type Box, type Mask } from './types.js';

export type StructuringElement = 'square' | 'disk';

export interface MorphologyOptions {
  /** 'disk' (default): Euclidean distance <= radius; 'square': Chebyshev distance <= radius (a (2r+1)^2 box). */
  shape?: StructuringElement;
}

/** Grows the mask by `radius` pixels. Outside the image counts as unset. */
export function dilate(mask: Mask, radius: number, opts: MorphologyOptions = {}): Mask {
  assertMask(mask);
  if (!(radius >= 0) || !Number.isFinite(radius)) throw new ImagingError('BAD_ARGUMENT', `radius must be >= 0, got ${radius}`);
  if (radius === 0) return { ...mask, data: Uint8Array.from(mask.data) };
  return (opts.shape ?? 'disk') === 'square' ? dilateSquare(mask, Math.floor(radius)) : dilateDisk(mask, radius);
}

/**
 * Shrinks the mask by `radius` pixels (the dual of `dilate`). Outside the image counts as set, so a subject
 * touching the border is not eaten from that side.
 */
export function erode(mask: Mask, radius: number, opts: MorphologyOptions = {}): Mask {
  return invert(dilate(invert(mask), radius, opts));
}

/** Square dilation, separable: a pixel is set when its row window, then its column window, holds a set pixel. */
function dilateSquare(mask: Mask, r: number): Mask {
  const { width: w, height: h } = mask;
  const tmp = new Uint8Array(w * h);
  const out = new Uint8Array(w * h);
  const line = (src: Uint8Array, dst: Uint8Array, start: number, stride: number, n: number) => {
    // prefix[i] = set pixels among the first i of the line; window [i-r, i+r] is set iff its count > 0
    const prefix = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + src[start + i * stride]!;
    for (let i = 0; i < n; i++) dst[start + i * stride] = prefix[Math.min(n, i + r + 1)]! - prefix[Math.max(0, i - r)]! > 0 ? 1 : 0;
  };
  for (let y = 0; y < h; y++) line(mask.data, tmp, y * w, 1, w);
  for (let x = 0; x < w; x++) line(tmp, out, x, w, h);
  return { width: w, height: h, data: out };
}

function dilateDisk(mask: Mask, radius: number): Mask {
  const d2 = squaredDistanceToSet(mask);
  const r2 = radius * radius;
  return { width: mask.width, height: mask.height, data: Uint8Array.from(d2, (d) => (d <= r2 ? 1 : 0)) };
}

const FAR = 1e20; // finite "infinity" keeps the parabola intersections free of Inf - Inf

/**
 * Exact squared Euclidean distance from every pixel to the nearest set pixel (Felzenszwalb & Huttenlocher,
 * "Distance Transforms of Sampled Functions", 2012): a 1-D lower envelope of parabolas per column, then per row.
 */
export function squaredDistanceToSet(mask: Mask): Float64Array {
  assertMask(mask);
  const { width: w, height: h } = mask;
  const g = Float64Array.from(mask.data, (v) => (v ? 0 : FAR));
  const n = Math.max(w, h);
  const f = new Float64Array(n),
    d = new Float64Array(n),
    z = new Float64Array(n + 1);
  const v = new Int32Array(n);
  const pass = (start: number, stride: number, len: number) => {
    for (let i = 0; i < len; i++) f[i] = g[start + i * stride]!;
    envelope(f, len, v, z, d);
    for (let i = 0; i < len; i++) g[start + i * stride] = d[i]!;
  };
  for (let x = 0; x < w; x++) pass(x, w, h);
  for (let y = 0; y < h; y++) pass(y * w, 1, w);
  return g;
}

function envelope(f: Float64Array, n: number, v: Int32Array, z: Float64Array, d: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  const meet = (q: number, p: number) => (f[q]! + q * q - (f[p]! + p * p)) / (2 * q - 2 * p);
  for (let q = 1; q < n; q++) {
    let s = meet(q, v[k]!);
    while (s <= z[k]!) s = meet(q, v[--k]!);
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    const p = v[k]!;
    d[q] = (q - p) * (q - p) + f[p]!;
  }
}

export type Connectivity = 4 | 8;

export interface Component {
  /** Label in `labels` (1-based; 0 is background). */
  label: number;
  area: number;
  box: Box;
}

export interface Components {
  /** Per pixel: 0 for unset pixels, else the label of its component. */
  labels: Int32Array;
  /** In label order (component i has label i + 1), i.e. in raster order of their first pixel. */
  components: Component[];
}

/** Labels the connected regions of set pixels (8-connectivity by default). */
export function connectedComponents(mask: Mask, connectivity: Connectivity = 8): Components {
  assertMask(mask);
  const { width: w, height: h, data } = mask;
  const labels = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  const components: Component[] = [];
  const dirs =
    connectivity === 8
      ? [
          [-1, -1],
          [0, -1],
          [1, -1],
          [-1, 0],
          [1, 0],
          [-1, 1],
          [0, 1],
          [1, 1],
        ]
      : [
          [0, -1],
          [-1, 0],
          [1, 0],
          [0, 1],
        ];
  for (let seed = 0; seed < w * h; seed++) {
    if (!data[seed] || labels[seed]) continue;
    const label = components.length + 1;
    let top = 0,
      count = 0;
    let x0 = w,
      y0 = h,
      x1 = 0,
      y1 = 0;
    stack[top++] = seed;
    labels[seed] = label;
    while (top > 0) {
      const p = stack[--top]!;
      const px = p % w,
        py = (p - px) / w;
      count++;
      if (px < x0) x0 = px;
      if (px > x1) x1 = px;
      if (py < y0) y0 = py;
      if (py > y1) y1 = py;
      for (const [dx, dy] of dirs) {
        const qx = px + dx!,
          qy = py + dy!;
        if (qx < 0 || qy < 0 || qx >= w || qy >= h) continue;
        const q = qy * w + qx;
        if (data[q] && !labels[q]) {
          labels[q] = label;
          stack[top++] = q;
        }
      }
    }
    components.push({ label, area: count, box: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } });
  }
  return { labels, components };
}

function keepLabels(mask: Mask, labels: Int32Array, keep: (label: number) => boolean): Mask {
  return { width: mask.width, height: mask.height, data: Uint8Array.from(labels, (l) => (l && keep(l) ? 1 : 0)) };
}

/** Only the largest connected component (the earliest in raster order on ties); empty stays empty. */
export function keepLargestComponent(mask: Mask, connectivity: Connectivity = 8): Mask {
  const { labels, components } = connectedComponents(mask, connectivity);
  let best: Component | undefined;
  for (const c of components) if (!best || c.area > best.area) best = c;
  return keepLabels(mask, labels, (l) => l === best?.label);
}

/** Drops connected components with fewer than `minArea` pixels (speckle from a thresholded map). */
export function removeSmallComponents(mask: Mask, minArea: number, connectivity: Connectivity = 8): Mask {
  const { labels, components } = connectedComponents(mask, connectivity);
  return keepLabels(mask, labels, (l) => components[l - 1]!.area >= minArea);
}

/**
 * Sets every unset region that does not touch the image border (holes). Holes are 4-connected, the dual of
 * 8-connected foreground, so a diagonal gap in an outline does not leak.
 */
export function fillHoles(mask: Mask): Mask {
  const { width: w, height: h } = mask;
  const { labels, components } = connectedComponents(invert(mask), 4);
  const touchesBorder = (c: Component) => c.box.x === 0 || c.box.y === 0 || c.box.x + c.box.width === w || c.box.y + c.box.height === h;
  const hole = components.map((c) => !touchesBorder(c));
  const out = Uint8Array.from(mask.data);
  for (let i = 0; i < out.length; i++) if (labels[i] && hole[labels[i]! - 1]) out[i] = 1;
  return { width: w, height: h, data: out };
}
