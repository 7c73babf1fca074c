/**
 * How a subject's surface is coloured: its body colour with the pattern (drawn in the subject's own units, so
 * it turns with the subject), per style: `shaded` darkens toward the edges and outlines each part in a
 * darker tone; `sketch` washes the colours toward paper and outlines in pencil.
 */
import { PAPER } from './contexts.js';
import { luminance, mix, type PaintFn, type RGB, type Stroke } from './raster.js';
import type { Fill } from './subjects.js';
import type { PatternName, StyleName } from './vocab.js';

const BLACK: RGB = [0, 0, 0];
const WHITE: RGB = [255, 255, 255];
const PENCIL: RGB = [55, 55, 60];

/** The pattern's second colour: a dark shade on light bodies, a light tint on dark ones. */
export function patternColour(body: RGB): RGB {
  return luminance(body) > 0.55 ? mix(body, BLACK, 0.5) : mix(body, WHITE, 0.6);
}

/**
 * Weight in [0, 1] of the pattern colour at local point (u, v); `period` in local units, `pxPerUnit` for
 * anti-aliasing the pattern's own edges.
 */
export function patternWeight(pattern: PatternName, u: number, v: number, period: number, pxPerUnit: number): number {
  if (pattern === 'plain') return 0;
  if (pattern === 'stripes') {
    const t = u / period;
    const edge = (Math.abs(t - Math.round(t)) - 0.25) * period * pxPerUnit;
    return edge <= -0.5 ? 1 : edge >= 0.5 ? 0 : 0.5 - edge;
  }
  if (pattern === 'dots') {
    const row = Math.round(v / period);
    const shift = (row & 1) === 0 ? 0 : period / 2;
    const cx = Math.round((u - shift) / period) * period + shift;
    const dx = u - cx;
    const dy = v - row * period;
    const edge = (Math.sqrt(dx * dx + dy * dy) - 0.27 * period) * pxPerUnit;
    return edge <= -0.5 ? 1 : edge >= 0.5 ? 0 : 0.5 - edge;
  }
  const cell = period * 0.6;
  const a = u / cell;
  const b = v / cell;
  const odd = (Math.floor(a) + Math.floor(b)) & 1;
  const e = Math.min(Math.min(Math.abs(a - Math.round(a)), Math.abs(b - Math.round(b))) * cell * pxPerUnit, 0.5);
  return odd ? 0.5 + e : 0.5 - e;
}

export interface SubjectPaints {
  paintFor(fill: Fill): PaintFn | RGB;
  strokeFor(fill: Fill): Stroke;
}

/** Paints for one subject of colour `body` drawn at `pxPerUnit` pixels per subject unit. */
export function subjectPaints(body: RGB, pattern: PatternName, style: StyleName, pxPerUnit: number): SubjectPaints {
  const sketch = style === 'sketch';
  const wash = (c: RGB): RGB => (sketch ? mix(c, PAPER, 0.35) : c);
  const second = patternColour(body);
  // at least 5 px per pattern period, so stripes and dots survive at 64 px
  const period = Math.max(0.17, 5 / pxPerUnit);
  const edgeDepth = 0.12 * pxPerUnit;
  const lineWidth = sketch ? Math.max(1.1, pxPerUnit * 0.04) : Math.max(0.8, pxPerUnit * 0.028);
  const surface = (tone: number): PaintFn => {
    const a = wash(mix(body, BLACK, tone));
    const b = wash(mix(second, BLACK, tone));
    return (u, v, depth, out) => {
      const w = patternWeight(pattern, u, v, period, pxPerUnit);
      // shaded: edges 18% darker than the middle of each part
      const shade = sketch ? 1 : 0.84 + 0.18 * Math.min(Math.max(depth / edgeDepth, 0), 1);
      out[0] = (a[0] + (b[0] - a[0]) * w) * shade;
      out[1] = (a[1] + (b[1] - a[1]) * w) * shade;
      out[2] = (a[2] + (b[2] - a[2]) * w) * shade;
    };
  };
  const bodyPaint = surface(0);
  const darkPaint = surface(0.22);
  const light = wash(mix(body, WHITE, 0.5));
  const outline = (c: RGB): Stroke => ({ rgb: sketch ? PENCIL : mix(c, BLACK, luminance(c) < 0.2 ? -1.6 : 0.55), width: lineWidth });
  const bodyStroke = outline(body);
  return {
    paintFor: (fill) => (fill === 'body' ? bodyPaint : fill === 'dark' ? darkPaint : fill === 'light' ? light : wash(fill)),
    strokeFor: (fill) => (typeof fill === 'string' ? bodyStroke : outline(fill)),
  };
}
