/**
 * How well each placeholder's cross-attention map matches its mask, on a fixed evaluation batch (all
 * subjects named in index order, no flip, a fixed timestep and fixed noise), before and after training:
 * the numbers and heatmaps of the report (issue 4: "the placeholder attention maps move toward their masks").
 */
import type { GaussianRng } from '@dynasyn/diffusion';
import type { HostTensor } from '@dynasyn/ort-training';
import type { Subject } from '../types.js';
import { maskAt, type BatchSetup, type StepDraw } from './batch.js';
import { resolveUnion } from './union.js';

/** One placeholder's map against its mask. */
export interface PlaceholderAlignment {
  token: string;
  /** M2A-style error: mean over cells of (A / max A - M)^2 (lower is better). */
  mse: number;
  /** IoU of {A / max A >= threshold} with the mask at the attention grid (higher is better). */
  iou: number;
  /** Share of the map's mass inside the mask: sum(A M) / sum(A). */
  inside: number;
  /** The raw map A [gh*gw] (attention probabilities of the placeholder's token, row-major) for heatmaps. */
  map: Float32Array;
}

export interface AlignmentSnapshot {
  /** Training steps done (over both phases) when measured. */
  afterSteps: number;
  /** Loss terms of the evaluation batch (unweighted; aug is 0: no augmented row). */
  losses: { md: number; m2a: number; ica: number };
  placeholders: PlaceholderAlignment[];
}

export interface AlignmentReport {
  grid: [number, number];
  timestep: number;
  /** Threshold of the IoU (on the max-normalised map). */
  threshold: number;
  before: AlignmentSnapshot;
  after: AlignmentSnapshot;
}

/** The evaluation draw: every subject, in index order, unflipped; t fixed; noise from `rng` (a dedicated fork). */
export function evaluationDraw(setup: Pick<BatchSetup, 'subjects' | 'latentShape'>, rng: GaussianRng, timestep: number): StepDraw {
  const n = setup.latentShape.reduce((a, b) => a * b, 1);
  const union = resolveUnion({ subjects: setup.subjects.map((_, i) => i), flip: false }, setup.subjects);
  return { union, t: timestep, noise: rng.fill(n) };
}

/** Alignment of each subject from the graph's `attention` output [2,hw,K] (row 0, column i = subject i). */
export function alignmentOf(
  attention: HostTensor,
  subjects: readonly Subject[],
  tokens: readonly string[],
  grid: [number, number],
  threshold: number,
): PlaceholderAlignment[] {
  const [, hw, K] = attention.dims as [number, number, number];
  const data = attention.data as Float32Array;
  return subjects.map((s, i) => {
    const map = new Float32Array(hw);
    for (let p = 0; p < hw; p++) map[p] = data[p * K + i]!;
    return { token: tokens[i]!, ...mapAgainstMask(map, maskAt(s.mask, grid[1], grid[0]), threshold), map };
  });
}

/** mse, IoU and inside-mass of one map against a 0/1 mask of the same length. */
export function mapAgainstMask(map: Float32Array, mask: Float32Array, threshold: number): { mse: number; iou: number; inside: number } {
  let peak = 0,
    total = 0,
    inMask = 0;
  for (let p = 0; p < map.length; p++) {
    peak = Math.max(peak, map[p]!);
    total += map[p]!;
    inMask += map[p]! * mask[p]!;
  }
  let se = 0,
    both = 0,
    either = 0;
  for (let p = 0; p < map.length; p++) {
    const a = peak > 0 ? map[p]! / peak : 0;
    se += (a - mask[p]!) ** 2;
    const on = a >= threshold ? 1 : 0;
    both += on & mask[p]!;
    either += on | mask[p]!;
  }
  return { mse: se / map.length, iou: either > 0 ? both / either : 0, inside: total > 0 ? inMask / total : 0 };
}
