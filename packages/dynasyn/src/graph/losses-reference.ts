/**
 * Host (float64) reference of the loss subgraph (losses.ts), written straight from METHOD.md "Losses" with
 * loops and no shared code, so the graph can be checked against it; also usable for logging on the host.
 * Layouts are those of the graph inputs (LOSS_INPUTS); every array is row-major.
 */
import { NORMALIZE_EPS } from './losses.js';

type Floats = ArrayLike<number>;

/** L_MD = mean over the C*h*w elements of row 0 of ((pred - target) * mask)^2; mask [B,1,h,w]. */
export function mdLossReference(pred: Floats, target: Floats, mask: Floats, dims: [number, number, number, number]): number {
  const [, C, h, w] = dims;
  const hw = h * w;
  let s = 0;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < hw; p++) {
      const d = (pred[c * hw + p]! - target[c * hw + p]!) * mask[p]!;
      s += d * d;
    }
  }
  return s / (C * hw);
}

/** A[r][k][p] = sum_t probs[r,p,t] * select[r,t,k]: per row r, subject k, cell p. */
export function selectedMapsReference(probs: Floats, select: Floats, B: number, hw: number, T: number, K: number): number[][][] {
  const out: number[][][] = [];
  for (let r = 0; r < B; r++) {
    const row: number[][] = [];
    for (let k = 0; k < K; k++) {
      const map: number[] = [];
      for (let p = 0; p < hw; p++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += probs[(r * hw + p) * T + t]! * select[(r * T + t) * K + k]!;
        map.push(s);
      }
      row.push(map);
    }
    out.push(row);
  }
  return out;
}

/** A / max(max A, eps) (eps only matters for an all-zero map, which stays zero). */
export function normalizeReference(map: readonly number[]): number[] {
  const peak = Math.max(Math.max(...map), NORMALIZE_EPS);
  return map.map((v) => v / peak);
}

/** g(x) = x / max(x), zeros when x is all zero (METHOD.md: the target of L_ICA). */
export function gReference(map: readonly number[]): number[] {
  const peak = Math.max(...map);
  return peak > 0 ? map.map((v) => v / peak) : map.map(() => 0);
}

/** sum_k w_k * mean_p (left_k[p] - target[k,p])^2, target [K,hw]. */
export function weightedMapLossReference(left: readonly (readonly number[])[], target: Floats, weight: Floats): number {
  let total = 0;
  left.forEach((map, k) => {
    let s = 0;
    map.forEach((v, p) => {
      const d = v - target[k * map.length + p]!;
      s += d * d;
    });
    total += weight[k]! * (s / map.length);
  });
  return total;
}

export interface LossReferenceInputs {
  /** [2,C,h,w] */
  prediction: Floats;
  latentDims: [number, number, number, number];
  /** [2,hw,T] */
  attentionProbs: Floats;
  hw: number;
  tokens: number;
  K: number;
  target: Floats;
  mdMask: Floats;
  tokenSelect: Floats;
  m2aTarget: Floats;
  icaTarget: Floats;
  augTarget: Floats;
  m2aWeight: Floats;
  icaWeight: Floats;
  augWeight: Floats;
  lambdas: Floats;
  icaNormalizeBoth: boolean;
}

export interface LossReference {
  loss: number;
  md: number;
  m2a: number;
  ica: number;
  aug: number;
  /** [row][subject][cell] selected maps A (not normalised). */
  maps: number[][][];
}

/** Every term and the weighted total, as the training graph computes them. */
export function lossesReference(x: LossReferenceInputs): LossReference {
  const md = mdLossReference(x.prediction, x.target, x.mdMask, x.latentDims);
  const maps = selectedMapsReference(x.attentionProbs, x.tokenSelect, 2, x.hw, x.tokens, x.K);
  const norm = maps.map((row) => row.map(normalizeReference));
  const icaSide = x.icaNormalizeBoth ? norm : maps;
  const m2a = weightedMapLossReference(norm[0]!, x.m2aTarget, x.m2aWeight);
  const ica = weightedMapLossReference(icaSide[0]!, x.icaTarget, x.icaWeight);
  const aug = weightedMapLossReference(icaSide[1]!, x.augTarget, x.augWeight);
  const l = x.lambdas;
  return { loss: l[0]! * md + l[1]! * m2a + l[2]! * ica + l[3]! * aug, md, m2a, ica, aug, maps };
}
