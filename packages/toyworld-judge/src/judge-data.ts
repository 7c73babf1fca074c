/**
 * The judge's training and evaluation examples, rendered fresh: a scene, the subject asked about (region A),
 * its partner (region B, zeros when alone), one-hot targets per head and the finder's per-cell class
 * fractions. Regions are the true masks, or the masks averaged over 4x4 / 8x8 cells (the coarseness of a
 * finder's map or of attention maps upsampled), so the classifier does not rely on a mask's exact outline.
 * Every batch is a function of (seed, step): a resumed run sees the batches an uninterrupted one would.
 */
import { createRng, renderScene, sampleSceneSpec, type RenderedScene, type Rng, type SampleOptions } from '@dynasyn/toyworld';
import { FINDER_CLASSES, FINDER_GRID, HEAD_OFFSETS, HEADS, LOGITS, relationOf, SUBJECT_HEADS } from './heads.js';
import { CROP, IMAGE_SIZE } from './judge-net.js';

const S = IMAGE_SIZE;

/** RGB HWC bytes -> CHW floats in [-1, 1], written at `out[offset..]`. */
export function imageToChw(rgb: Uint8Array, out: Float32Array = new Float32Array(3 * S * S), offset = 0): Float32Array {
  const n = S * S;
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[offset + c * n + i] = rgb[i * 3 + c]! / 127.5 - 1;
  return out;
}

/** A mask averaged over `f` x `f` cells and spread back to pixels (f = 1: the mask itself). */
export function coarsen(mask: ArrayLike<number>, f: number): Float32Array {
  const out = Float32Array.from(mask);
  if (f === 1) return out;
  for (let cy = 0; cy < S; cy += f)
    for (let cx = 0; cx < S; cx += f) {
      let s = 0;
      for (let y = cy; y < cy + f; y++) for (let x = cx; x < cx + f; x++) s += mask[y * S + x]!;
      s /= f * f;
      for (let y = cy; y < cy + f; y++) for (let x = cx; x < cx + f; x++) out[y * S + x] = s;
    }
  return out;
}

/** Per-cell class fractions [11, 16, 16] of a render: what the finder learns to predict. */
export function cellTargets(scene: RenderedScene, out: Float32Array = new Float32Array(FINDER_CLASSES.length * FINDER_GRID ** 2), offset = 0): Float32Array {
  const G = FINDER_GRID,
    f = S / G,
    cells = G * G;
  const classOf = scene.labels.subjects.map((s) => 1 + HEADS.class.indexOf(s.class));
  for (let cy = 0; cy < G; cy++)
    for (let cx = 0; cx < G; cx++) {
      const cell = cy * G + cx;
      let bg = f * f;
      for (let y = cy * f; y < cy * f + f; y++)
        for (let x = cx * f; x < cx * f + f; x++)
          scene.masks.forEach((m, k) => {
            if (m[y * S + x]) {
              out[offset + classOf[k]! * cells + cell]! += 1 / (f * f);
              bg--;
            }
          });
      out[offset + cell] = bg / (f * f);
    }
  return out;
}

/** One-hot targets of the heads for subject `a` of `scene` (B = the other subject); a hidden subject has none. */
export function headTargets(scene: RenderedScene, a: number, out: Float32Array = new Float32Array(LOGITS), offset = 0): Float32Array {
  const { labels } = scene;
  const set = (head: keyof typeof HEADS, value: string) => {
    out[offset + HEAD_OFFSETS[head] + (HEADS[head] as readonly string[]).indexOf(value)] = 1;
  };
  const subject = labels.subjects[a]!;
  if (subject.area > 0) for (const h of SUBJECT_HEADS) set(h, subject[h]);
  if (labels.interaction && labels.subjects.length === 2) set('relation', relationOf(labels.interaction, a as 0 | 1));
  set('context', labels.context);
  set('style', labels.style);
  return out;
}

export interface JudgeInputs {
  crop: Float32Array;
  scene: Float32Array;
  patch: Float32Array;
}

/** Buffers for `n` examples' classifier inputs. */
export const judgeInputBuffers = (n = 1): JudgeInputs => ({
  crop: new Float32Array(n * 4 * CROP * CROP),
  scene: new Float32Array(n * 5 * CROP * CROP),
  patch: new Float32Array(n * 4 * CROP * CROP),
});

/**
 * The classifier's inputs for subject A: `crop` [4,32,32] (RGB in [-1,1] and region A, sampled bilinearly from
 * a square around region A's box with a 30% margin: the subject centred at one scale whatever its size),
 * `patch` [4,32,32] (the 32x32 pixels around the box's centre, unresampled, and region A there; zeros outside
 * the image: the body pattern's texture at the render's own resolution, where the crop's resampling blurs or
 * aliases a 5-pixel stripe into checks) and `scene` [5,32,32] (the image and both regions averaged over 2x2:
 * where the two subjects are, the context). Written as example `index` of `out` (judgeInputBuffers' layout).
 */
export function judgeInputs(
  rgb: Uint8Array,
  regionA: ArrayLike<number>,
  regionB: ArrayLike<number>,
  out: JudgeInputs = judgeInputBuffers(),
  index = 0,
): JudgeInputs {
  const offsets = { crop: index * 4 * CROP * CROP, scene: index * 5 * CROP * CROP, patch: index * 4 * CROP * CROP };
  let max = 0;
  for (let i = 0; i < S * S; i++) max = Math.max(max, regionA[i]!);
  let x0 = S,
    y0 = S,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      if (max > 0 && regionA[y * S + x]! >= 0.3 * max) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
  if (x1 < 0) [x0, y0, x1, y1] = [0, 0, S - 1, S - 1];
  const side = Math.max(12, Math.max(x1 - x0 + 1, y1 - y0 + 1) * 1.3);
  const cx = (x0 + x1 + 1) / 2,
    cy = (y0 + y1 + 1) / 2;
  const P = CROP * CROP;
  const at = (plane: (i: number) => number, fx: number, fy: number): number => {
    const x = Math.min(S - 1, Math.max(0, fx)),
      y = Math.min(S - 1, Math.max(0, fy));
    const xa = Math.floor(x),
      ya = Math.floor(y),
      xb = Math.min(S - 1, xa + 1),
      yb = Math.min(S - 1, ya + 1);
    const tx = x - xa,
      ty = y - ya;
    return (1 - ty) * ((1 - tx) * plane(ya * S + xa) + tx * plane(ya * S + xb)) + ty * ((1 - tx) * plane(yb * S + xa) + tx * plane(yb * S + xb));
  };
  for (let j = 0; j < CROP; j++)
    for (let i = 0; i < CROP; i++) {
      const fx = cx - side / 2 + ((i + 0.5) * side) / CROP - 0.5,
        fy = cy - side / 2 + ((j + 0.5) * side) / CROP - 0.5;
      for (let c = 0; c < 3; c++) out.crop[offsets.crop + c * P + j * CROP + i] = at((k) => rgb[k * 3 + c]! / 127.5 - 1, fx, fy);
      out.crop[offsets.crop + 3 * P + j * CROP + i] = at((k) => regionA[k]!, fx, fy);
    }
  const px0 = Math.round(cx - CROP / 2),
    py0 = Math.round(cy - CROP / 2);
  for (let j = 0; j < CROP; j++)
    for (let i = 0; i < CROP; i++) {
      const x = px0 + i,
        y = py0 + j;
      const inside = x >= 0 && x < S && y >= 0 && y < S;
      for (let c = 0; c < 3; c++) out.patch[offsets.patch + c * P + j * CROP + i] = inside ? rgb[(y * S + x) * 3 + c]! / 127.5 - 1 : 0;
      out.patch[offsets.patch + 3 * P + j * CROP + i] = inside ? regionA[y * S + x]! : 0;
    }
  for (let j = 0; j < CROP; j++)
    for (let i = 0; i < CROP; i++) {
      const k = (dy: number, dx: number) => (2 * j + dy) * S + 2 * i + dx;
      const mean = (plane: (k: number) => number) => (plane(k(0, 0)) + plane(k(0, 1)) + plane(k(1, 0)) + plane(k(1, 1))) / 4;
      for (let c = 0; c < 3; c++) out.scene[offsets.scene + c * P + j * CROP + i] = mean((q) => rgb[q * 3 + c]! / 127.5 - 1);
      out.scene[offsets.scene + 3 * P + j * CROP + i] = mean((q) => regionA[q]!);
      out.scene[offsets.scene + 4 * P + j * CROP + i] = mean((q) => regionB[q]!);
    }
  return out;
}

export interface JudgeBatch extends JudgeInputs {
  /** The full image [B,3,64,64] (the finder's input). */
  image: Float32Array;
  targets: Float32Array;
  cells: Float32Array;
}

/** Regions [2, S*S] for subject `a` (and its partner) of a scene, coarsened by `f`. */
export function regionsFor(scene: RenderedScene, a: number, f = 1, out: Float32Array = new Float32Array(2 * S * S), offset = 0): Float32Array {
  out.set(coarsen(scene.masks[a]!, f), offset);
  if (scene.masks.length === 2) out.set(coarsen(scene.masks[1 - a]!, f), offset + S * S);
  return out;
}

/** Scene specs the judge trains on: fresh draws that never hold a held-out identity. */
export function trainingSpec(rng: Rng, options: SampleOptions = {}) {
  return sampleSceneSpec(rng, { heldOut: 'exclude', ...options });
}

/** The training batch of `step`: B scenes, a random subject of each, regions coarsened at random. */
export function judgeBatch(seed: string | number, step: number, batch: number): JudgeBatch {
  const rng = createRng(`${seed}/judge-train/${step}`);
  const out: JudgeBatch = {
    image: new Float32Array(batch * 3 * S * S),
    ...judgeInputBuffers(batch),
    targets: new Float32Array(batch * LOGITS),
    cells: new Float32Array(batch * FINDER_CLASSES.length * FINDER_GRID ** 2),
  };
  for (let b = 0; b < batch; b++) {
    const scene = renderScene(trainingSpec(rng), { size: S });
    const a = rng.int(scene.masks.length);
    const u = rng.next();
    const f = u < 0.4 ? 1 : u < 0.7 ? 4 : 8;
    imageToChw(scene.rgb, out.image, b * 3 * S * S);
    const regions = regionsFor(scene, a, f);
    judgeInputs(scene.rgb, regions.subarray(0, S * S), regions.subarray(S * S), out, b);
    headTargets(scene, a, out.targets, b * LOGITS);
    cellTargets(scene, out.cells, b * FINDER_CLASSES.length * FINDER_GRID ** 2);
  }
  return out;
}
