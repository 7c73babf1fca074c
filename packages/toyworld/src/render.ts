/**
 * renderScene: a spec and a size to an RGB image, one mask per subject (its visible pixels after occlusion),
 * labels and captions. The same (spec, size) gives the same bytes everywhere (see raster.ts).
 */
import { captionsFor } from './captions.js';
import { drawBackground } from './contexts.js';
import { ToyworldError } from './errors.js';
import { subjectPaints } from './paint.js';
import { darkenShape, drawShape, ellipse, Layer, type Frame, type RGB } from './raster.js';
import { parseSceneSpec, type SceneSpec, type SubjectSpec } from './spec.js';
import { buildSubject, type SubjectModel } from './subjects.js';
import {
  COLOUR_RGB,
  type AccessoryName,
  type ActionName,
  type ClassName,
  type ColourName,
  type ContextName,
  type Facing,
  type InteractionName,
  type PatternName,
  type StyleName,
} from './vocab.js';

export interface RenderOptions {
  /** Side of the square image in pixels, 32..512 (default 64). */
  size?: number;
}

/** A box in pixels: [x0, y0, x1, y1), x1 and y1 exclusive. */
export type PixelBox = [number, number, number, number];

export interface SubjectLabels {
  class: ClassName;
  colour: ColourName;
  pattern: PatternName;
  accessory: AccessoryName;
  action: ActionName;
  facing: Facing;
  /** Bounding box of the visible pixels (the mask); null when the subject is hidden entirely. */
  box: PixelBox | null;
  /** Visible pixels (the mask's area). */
  area: number;
  /** Drawing order, 0 = drawn first (furthest back). */
  depth: number;
}

export interface SceneLabels {
  subjects: SubjectLabels[];
  /** How subject 0 relates to subject 1; null with one subject. */
  interaction: InteractionName | null;
  context: ContextName;
  style: StyleName;
  size: number;
}

export interface RenderedScene {
  /** Pixels, row-major HWC RGB bytes (length width * height * 3). */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** One mask per subject, in spec order: 1 where the subject is visible (its share of the pixel >= 1/2), else 0. */
  masks: Uint8Array[];
  labels: SceneLabels;
  /** Captions from several templates, the first one complete (it names every label). */
  captions: string[];
  spec: SceneSpec;
}

const GROUND = 0.9;

interface Placed {
  model: SubjectModel;
  frame: Frame;
  /** Screen box in pixels of the drawn subject (before clipping). */
  box: [number, number, number, number];
  /** Where its ground shadow goes, or null (resting on another subject). */
  shadowY: number | null;
}

/** Bounds of a subject's parts turned and mirrored as drawn, in subject units (origin at its feet). */
function posedBounds(model: SubjectModel, mirror: boolean): [number, number, number, number] {
  const rot = mirror ? -model.rot : model.rot;
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  const m = mirror ? -1 : 1;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const { shape } of model.parts) {
    const [a0, b0, a1, b1] = shape.bbox;
    for (const [u, v] of [
      [a0, b0],
      [a1, b0],
      [a0, b1],
      [a1, b1],
    ] as const) {
      const x = c * u * m - s * v;
      const y = s * u * m + c * v;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  return [x0, y0, x1, y1];
}

/** Puts a subject of `scale` px/unit with its bounds centred at x and its lowest point `bottom` px down. */
function place(model: SubjectModel, mirror: boolean, scale: number, cx: number, bottom: number, onGround: boolean): Placed {
  const [x0, y0, x1, y1] = posedBounds(model, mirror);
  const lift = model.lift * scale;
  const tx = cx - ((x0 + x1) / 2) * scale;
  const ty = bottom - lift - y1 * scale;
  return {
    model,
    frame: { scale, rot: mirror ? -model.rot : model.rot, mirror, tx, ty },
    box: [tx + x0 * scale, ty + y0 * scale, tx + x1 * scale, ty + y1 * scale],
    shadowY: onGround ? bottom : null,
  };
}

/** Subject sizes (px per unit, as a fraction of the image side) per arrangement. */
const SCALE = { single: 0.44, 'next to': 0.32, 'on top of': 0.3, front: 0.36, back: 0.3 } as const;

/** Places the subjects for the spec; returns them in drawing order (back first) with their spec index. */
function arrange(spec: SceneSpec, models: SubjectModel[], size: number): Array<{ index: number; placed: Placed }> {
  const mirrors = spec.subjects.map((s) => (s.facing ?? 'right') === 'left');
  const layoutScale = spec.layout?.scale ?? 1;
  const cx = (spec.layout?.x ?? 0.5) * size;
  const dir = spec.layout?.mirror ? -1 : 1;
  const ground = GROUND * size;
  const lay = (fit: number): Array<{ index: number; placed: Placed }> => {
    const k = size * layoutScale * fit;
    if (models.length === 1) return [{ index: 0, placed: place(models[0]!, mirrors[0]!, SCALE.single * k, cx, ground, true) }];
    const [m0, m1] = [models[0]!, models[1]!];
    switch (spec.interaction!) {
      case 'next to': {
        const s = SCALE['next to'] * k;
        const w = (m: SubjectModel, i: number) => {
          const [x0, , x1] = posedBounds(m, mirrors[i]!);
          return (x1 - x0) * s;
        };
        const [w0, w1] = [w(m0, 0), w(m1, 1)];
        const gap = 0.06 * size;
        const left = cx - (w0 + w1 + gap) / 2;
        const c0 = dir > 0 ? left + w0 / 2 : left + w1 + gap + w0 / 2;
        const c1 = dir > 0 ? left + w0 + gap + w1 / 2 : left + w1 / 2;
        return [
          { index: 0, placed: place(m0, mirrors[0]!, s, c0, ground, true) },
          { index: 1, placed: place(m1, mirrors[1]!, s, c1, ground, true) },
        ];
      }
      case 'on top of': {
        const s = SCALE['on top of'] * k;
        const below = place(m1, mirrors[1]!, s, cx, ground, true);
        // resting on the top edge of the one below, sunk a little so they touch
        const above = place(m0, mirrors[0]!, s, cx, below.box[1] + 0.03 * s, false);
        return [
          { index: 1, placed: below },
          { index: 0, placed: above },
        ];
      }
      case 'in front of':
      case 'behind': {
        const front = spec.interaction === 'in front of' ? 0 : 1;
        const back = 1 - front;
        const mf = models[front]!;
        const mb = models[back]!;
        const placedBack = place(mb, mirrors[back]!, SCALE.back * k, cx + dir * 0.12 * size, 0.76 * size, true);
        const placedFront = place(mf, mirrors[front]!, SCALE.front * k, cx - dir * 0.1 * size, 0.93 * size, true);
        return [
          { index: back, placed: placedBack },
          { index: front, placed: placedFront },
        ];
      }
    }
  };
  // shrink, then shift, until the group fits inside the image with a small margin
  let placed = lay(1);
  const margin = 0.02 * size;
  const bounds = (): [number, number, number, number] => {
    const b: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const { placed: p } of placed) {
      b[0] = Math.min(b[0], p.box[0]);
      b[1] = Math.min(b[1], p.box[1]);
      b[2] = Math.max(b[2], p.box[2]);
      b[3] = Math.max(b[3], p.box[3]);
    }
    return b;
  };
  const [bx0, by0, bx1] = bounds();
  const fitW = (size - 2 * margin) / (bx1 - bx0);
  const fitH = (ground - margin) / (ground - by0);
  const fit = Math.min(1, fitW, fitH);
  if (fit < 1) placed = lay(fit * 0.999);
  const [nx0, , nx1] = bounds();
  const shift = nx0 < margin ? margin - nx0 : nx1 > size - margin ? size - margin - nx1 : 0;
  if (shift !== 0)
    for (const { placed: p } of placed) {
      p.frame.tx += shift;
      p.box[0] += shift;
      p.box[2] += shift;
    }
  return placed;
}

/** Backgrounds depend only on (context, style, size): drawn once each, then copied. */
const backgrounds = new Map<string, Float32Array>();
function background(context: ContextName, style: StyleName, size: number): Float32Array {
  const key = `${context}/${style}/${size}`;
  let rgb = backgrounds.get(key);
  if (!rgb) {
    const layer = new Layer(size, size);
    drawBackground(layer, context, style);
    rgb = layer.rgb;
    if (backgrounds.size >= 64) backgrounds.clear();
    backgrounds.set(key, rgb);
  }
  return rgb;
}

/** Subject layers are reused between renders (rendering is synchronous): cleared, not reallocated. */
const layerPool = new Map<number, Layer[]>();
function scratchLayer(size: number, k: number): Layer {
  let pool = layerPool.get(size);
  if (!pool) {
    if (layerPool.size >= 8) layerPool.clear();
    layerPool.set(size, (pool = []));
  }
  const layer = (pool[k] ??= new Layer(size, size));
  layer.rgb.fill(0);
  layer.alpha.fill(0);
  return layer;
}

function checkSize(size: number): number {
  if (!Number.isInteger(size) || size < 32 || size > 512) throw new ToyworldError('BAD_ARGUMENT', `size must be an integer from 32 to 512; got ${size}`);
  return size;
}

function drawSubject(layer: Layer, subject: SubjectSpec, placed: Placed, style: StyleName): void {
  const paints = subjectPaints(COLOUR_RGB[subject.colour] as RGB, subject.pattern, style, placed.frame.scale);
  for (const { shape, fill } of placed.model.parts) drawShape(layer, placed.frame, shape, paints.paintFor(fill), paints.strokeFor(fill));
}

/** Renders a scene (the spec is validated first). */
export function renderScene(specJson: SceneSpec | unknown, options: RenderOptions = {}): RenderedScene {
  const spec = parseSceneSpec(specJson);
  const size = checkSize(options.size ?? 64);
  const models = spec.subjects.map((s) => buildSubject(s.class, s.action, s.accessory, COLOUR_RGB[s.colour] as RGB));
  const order = arrange(spec, models, size);

  const canvas = scratchLayer(size, 2);
  canvas.rgb.set(background(spec.context, spec.style, size));
  const flat: Frame = { scale: size, rot: 0, mirror: false, tx: 0, ty: 0 };
  for (const { placed } of order) {
    if (placed.shadowY === null) continue;
    const w = (placed.box[2] - placed.box[0]) / size;
    const shadow = ellipse((placed.box[0] + placed.box[2]) / 2 / size, placed.shadowY / size, Math.max(0.45 * w, 0.06), 0.025);
    darkenShape(canvas, flat, shadow, spec.style === 'sketch' ? 0.12 : 0.3);
  }

  const layers = order.map(({ index, placed }, k) => {
    const layer = scratchLayer(size, k); // 0 and 1; 2 is the canvas
    drawSubject(layer, spec.subjects[index]!, placed, spec.style);
    return layer;
  });

  const n = size * size;
  const masks: Uint8Array[] = spec.subjects.map(() => new Uint8Array(n));
  const subjects: SubjectLabels[] = spec.subjects.map((s) => ({
    class: s.class,
    colour: s.colour,
    pattern: s.pattern,
    accessory: s.accessory,
    action: s.action,
    facing: s.facing ?? 'right',
    box: null,
    area: 0,
    depth: 0,
  }));
  const boxes = order.map((): [number, number, number, number] => [size, size, 0, 0]);
  const areas = order.map(() => 0);
  // only the pixels the subjects can touch: their drawn boxes, widened for outlines and rounding
  const [ux0, uy0, ux1, uy1] = order.reduce(
    (b, { placed: { box } }) => [Math.min(b[0], box[0]), Math.min(b[1], box[1]), Math.max(b[2], box[2]), Math.max(b[3], box[3])],
    [Infinity, Infinity, -Infinity, -Infinity],
  );
  const xs = Math.max(0, Math.floor(ux0) - 3);
  const xe = Math.min(size, Math.ceil(ux1) + 3);
  const ys = Math.max(0, Math.floor(uy0) - 3);
  const ye = Math.min(size, Math.ceil(uy1) + 3);
  // composite back to front; a subject's visible share of a pixel is its alpha times what the ones in front
  // leave, and its mask is where that share is at least 1/2
  const out = canvas.rgb;
  for (let y = ys; y < ye; y++) {
    for (let x = xs; x < xe; x++) {
      const i = y * size + x;
      let through = 1;
      for (let k = layers.length - 1; k >= 0; k--) {
        const a = layers[k]!.alpha[i]!;
        if (a === 0) continue;
        if (a * through >= 0.5) {
          masks[order[k]!.index]![i] = 1;
          areas[k]!++;
          const b = boxes[k]!;
          if (x < b[0]) b[0] = x;
          if (x + 1 > b[2]) b[2] = x + 1;
          if (y < b[1]) b[1] = y;
          if (y + 1 > b[3]) b[3] = y + 1;
        }
        through *= 1 - a;
      }
      for (let k = 0; k < layers.length; k++) {
        const L = layers[k]!;
        const a = L.alpha[i]!;
        if (a === 0) continue;
        out[3 * i] = out[3 * i]! * (1 - a) + L.rgb[3 * i]!;
        out[3 * i + 1] = out[3 * i + 1]! * (1 - a) + L.rgb[3 * i + 1]!;
        out[3 * i + 2] = out[3 * i + 2]! * (1 - a) + L.rgb[3 * i + 2]!;
      }
    }
  }
  const rgb = new Uint8Array(n * 3);
  for (let j = 0; j < n * 3; j++) {
    const v = out[j]!;
    // round half up, as Math.round for the non-negative values that reach here
    rgb[j] = v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
  }
  order.forEach(({ index }, k) => {
    const label = subjects[index]!;
    label.area = areas[k]!;
    label.box = areas[k] ? boxes[k]! : null;
    label.depth = k;
  });

  return {
    rgb,
    width: size,
    height: size,
    masks,
    labels: { subjects, interaction: spec.interaction ?? null, context: spec.context, style: spec.style, size },
    captions: captionsFor(spec),
    spec,
  };
}
