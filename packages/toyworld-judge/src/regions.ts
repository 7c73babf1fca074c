/**
 * Where each subject is in an image, from one of three sources:
 *  - `masks`: the subjects' masks (a render's ground truth, or a user's masks);
 *  - `attention`: the personalization's cross-attention maps of each subject's token, normalised by their
 *    maximum, thresholded and upsampled (nearest) to the image;
 *  - `judge`: the judge's own finder: its foreground map split into subjects (regionsFromFinder), upsampled.
 */
import type { ClassName, InteractionName } from '@dynasyn/toyworld';
import { FINDER_CLASSES, FINDER_GRID } from './heads.js';
import { IMAGE_SIZE } from './judge-net.js';

const S = IMAGE_SIZE;

export type RegionSource =
  /** Per subject, S*S values in [0, 1] (0/1 masks or soft ones). */
  | { kind: 'masks'; masks: ArrayLike<number>[] }
  /** Per subject, a grid x grid attention map (any scale); cells >= threshold x max become the region (default 0.5). */
  | { kind: 'attention'; maps: ArrayLike<number>[]; grid: number; threshold?: number }
  /** The judge's own subject finder. */
  | { kind: 'judge' };

/** A grid x grid map spread to S x S pixels (nearest). */
export function upsampleGrid(map: ArrayLike<number>, grid: number): Float32Array {
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[y * S + x] = map[Math.floor((y * grid) / S) * grid + Math.floor((x * grid) / S)]!;
  return out;
}

/** An attention map as a region: cells at least `threshold` of its maximum, upsampled. */
export function regionFromAttention(map: ArrayLike<number>, grid: number, threshold = 0.5): Float32Array {
  if (map.length !== grid * grid) throw new Error(`an attention map of a ${grid}x${grid} grid has ${grid * grid} values, got ${map.length}`);
  let max = 0;
  for (let i = 0; i < map.length; i++) max = Math.max(max, map[i]!);
  const bin = Float32Array.from(map, (v) => (max > 0 && v >= threshold * max ? 1 : 0));
  return upsampleGrid(bin, grid);
}

/** Connected parts (4-neighbour) of the cells where `map` >= 0.5, largest first. */
function components(map: Float32Array, G: number): number[][] {
  const seen = new Uint8Array(G * G);
  const parts: number[][] = [];
  for (let s = 0; s < G * G; s++) {
    if (seen[s] || map[s]! < 0.5) continue;
    const part: number[] = [];
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const c = stack.pop()!;
      part.push(c);
      const y = Math.floor(c / G),
        x = c % G;
      for (const [dy, dx] of [
        [1, 0],
        [-1, 0],
        [0, 1],
        [0, -1],
      ] as const) {
        const ny = y + dy,
          nx = x + dx,
          n = ny * G + nx;
        if (ny >= 0 && ny < G && nx >= 0 && nx < G && !seen[n] && map[n]! >= 0.5) {
          seen[n] = 1;
          stack.push(n);
        }
      }
    }
    parts.push(part);
  }
  return parts.sort((a, b) => b.length - a.length);
}

/** Cells of `cells` kept at their `map` values, the rest zero. */
function keepCells(map: Float32Array, cells: number[], G: number): Float32Array {
  const m = new Float32Array(G * G);
  for (const c of cells) m[c] = map[c]!;
  return m;
}

/** A map split at its centre of mass, across the vertical (rows) or the horizontal (columns) axis. */
function splitAtCentre(map: Float32Array, G: number, vertical: boolean): [Float32Array, Float32Array] {
  let num = 0,
    den = 0;
  for (let c = 0; c < G * G; c++) {
    num += map[c]! * (vertical ? Math.floor(c / G) : c % G);
    den += map[c]!;
  }
  const centre = den > 0 ? num / den : G / 2;
  const a = new Float32Array(G * G),
    b = new Float32Array(G * G);
  for (let c = 0; c < G * G; c++) ((vertical ? Math.floor(c / G) : c % G) < centre ? a : b)[c] = map[c]!;
  return [a, b];
}

/**
 * Candidate regions per subject from the finder's probabilities [11, G, G]. The finder's foreground (1 - the
 * background probability) is far more reliable than its per-cell class (a first version took each asked
 * class's map: 56% of classes right against 98% with true masks), so: one subject is the foreground; two are
 * offered as several partitions of it, each in both assignments, and the scorer keeps the one agreeing best
 * with what was asked:
 *  - its two largest connected parts, when it has two or more (subjects apart);
 *  - by the asked classes' maps, when the classes differ, and at its centre of mass across each axis (subjects
 *    that touch or overlap).
 * The second kind is offered even when the foreground has several parts: a subject behind another often shows
 * as two pieces, or a stray piece of the background reads as foreground, and the two largest parts are then not
 * the two subjects (offering only the parts there read 81% of the classes of subjects behind or in front of
 * another in true renders right, with both kinds 96%; 300 captions of the text-to-image stream). Offering only
 * the class-map split, or only the split along the interaction's axis, read 60% of the classes of touching
 * subjects right. Every candidate is a partition of the finder's foreground: the choice is which of them is
 * which subject, never where the subjects are.
 */
export function regionsFromFinder(probs: Float32Array, classes: (ClassName | undefined)[], interaction?: InteractionName): Float32Array[][] {
  const G = FINDER_GRID,
    cells = G * G;
  const classMap = (c: ClassName) => {
    const k = (FINDER_CLASSES as readonly string[]).indexOf(c);
    return probs.subarray(k * cells, (k + 1) * cells);
  };
  const foreground = Float32Array.from(probs.subarray(0, cells), (p) => 1 - p);
  const up = (grids: Float32Array[]) => grids.map((g) => upsampleGrid(g, G));
  if (classes.length === 1) return [up([foreground])];
  const pairs: [Float32Array, Float32Array][] = [];
  const parts = components(foreground, G);
  if (parts.length >= 2) pairs.push([keepCells(foreground, parts[0]!, G), keepCells(foreground, parts[1]!, G)]);
  const [c0, c1] = classes;
  if (c0 && c1 && c0 !== c1) {
    const m0 = classMap(c0),
      m1 = classMap(c1);
    const a = Float32Array.from(foreground, (f, j) => (m0[j]! >= m1[j]! ? f : 0)),
      b = Float32Array.from(foreground, (f, j) => (m0[j]! >= m1[j]! ? 0 : f));
    if (a.reduce((s, v) => s + v, 0) >= 1 && b.reduce((s, v) => s + v, 0) >= 1) pairs.push([a, b]);
  }
  // the interaction's axis first (on top of: rows), so a tie keeps it
  const vertical = interaction === 'on top of';
  pairs.push(splitAtCentre(foreground, G, vertical), splitAtCentre(foreground, G, !vertical));
  return pairs.flatMap(([a, b]) => [up([a, b]), up([b, a])]);
}

/** The regions of a mask or attention source, one S*S map per subject (validated). */
export function regionsFromSource(source: Exclude<RegionSource, { kind: 'judge' }>, subjects: number): Float32Array[] {
  const maps = source.kind === 'masks' ? source.masks : source.maps;
  if (maps.length < subjects) throw new Error(`the region source has ${maps.length} region(s) for ${subjects} asked subject(s)`);
  if (source.kind === 'attention') return maps.slice(0, subjects).map((m) => regionFromAttention(m, source.grid, source.threshold));
  return maps.slice(0, subjects).map((m) => {
    if (m.length !== S * S) throw new Error(`a mask region has ${S * S} values (${S}x${S}), got ${m.length}`);
    return Float32Array.from(m, (v) => (v > 1 ? v / 255 : v));
  });
}
