/**
 * The loss subgraph of a training step (METHOD.md "Losses"), appended to the composed text encoder + UNet
 * graph. Batch row 0 is the reference image (L_MD, L_M2A, L_ICA), row 1 one augmented image (L_AUG); the
 * host computes everything that needs no gradient (targets, masks at the attention grid, the frozen
 * model's g(M * A(c_hat))) and feeds it. Each term is one function below; `losses-reference.ts` computes the
 * same equations on the host for tests. A graph of batch 1 takes one row at a time, in either part (the
 * trainer's rows-per-pass 1: two passes whose gradients add up to those of the batch-2 step).
 */
import { Builder, DataType, scalar, type Graph, type TensorType } from '@dynasyn/ort-training';
import { DiffusionError } from '@dynasyn/diffusion';

/** Graph inputs of the loss subgraph (all float32). */
export const LOSS_INPUTS = {
  /** [2,C,h,w] eps or v, computed on the host. */
  target: 'target',
  /** [2,1,h,w] row 0: union mask M_s at latent size; row 1: zeros. */
  mdMask: 'md_mask',
  /** [2,77,K] one-hot: column k picks subject k's placeholder position in that row's prompt (zeros if absent). */
  tokenSelect: 'token_select',
  /** [K,gh*gw] masks M_k at the attention grid (nearest). */
  m2aTarget: 'm2a_target',
  /** [K,gh*gw] g(M_k * A_k(c_hat)) of the reference (frozen model). */
  icaTarget: 'ica_target',
  /** [K,gh*gw] g(M^a_k * A_k(c_hat_a)) of the augmented row (frozen model). */
  augTarget: 'aug_target',
  /** [K] 1 for subjects in s, else 0. */
  m2aWeight: 'm2a_weight',
  icaWeight: 'ica_weight',
  /** [K] 1 for subjects present in the augmented image, else 0. */
  augWeight: 'aug_weight',
  /** [4] lambda_md, lambda_m2a, lambda_ica, lambda_aug. */
  lambdas: 'lambdas',
  /** With the frozen branch in the graph, instead of ica_target / aug_target: */
  /** [2,77,K] multi-hot: column k picks subject k's class-word positions in that row's class prompt c_hat. */
  classSelect: 'class_select',
  /** [K,gh*gw] masks of the augmented image's subjects at the attention grid (row 0's are m2a_target). */
  augMask: 'aug_mask',
} as const;

/** Outputs of the loss subgraph: the scalar loss, each term (scalars) and the selected maps [2,hw,K]. */
export const LOSS_OUTPUTS = {
  loss: 'loss',
  md: 'loss_md',
  m2a: 'loss_m2a',
  ica: 'loss_ica',
  aug: 'loss_aug',
  attention: 'attention',
} as const;

/** Guards max-normalisation of an all-zero map (an absent subject): A / max(max A, eps). */
export const NORMALIZE_EPS = 1e-12;

export interface LossSubgraphOptions {
  /** UNet prediction [2,C,h,w]. */
  prediction: string;
  /** Captured cross-attention probabilities [2,hw,T]. */
  attentionProbs: string;
  /** Subject slots K. */
  maxSubjects: number;
  /** Normalise A(c) by its max in L_ICA / L_AUG too (METHOD.md default), else the paper's raw A(c). */
  icaNormalizeBoth: boolean;
  /**
   * The frozen branch's A(c_hat) [2,hw,T] (composeEncoderUnet's `frozen`): the ICA/AUG targets are then
   * computed in the graph (classTargets) from class_select and aug_mask; without it they are fed.
   */
  classAttentionProbs?: string;
}

const FLOAT = DataType.FLOAT;

/**
 * L_MD = mean over all C*h*w latent elements of row 0 of ((pred - target) * M_s)^2 (METHOD.md "Losses":
 * masked diffusion loss; row 1, the augmented image, has no reconstruction loss).
 */
export function maskedDiffusionLoss(b: Builder, pred: string, target: string, mask: string): string {
  const masked = b.mul(b.sub(pred, target), mask);
  const row0 = b.op('Gather', [masked, b.constant(scalar(DataType.INT64, 0), 'row0')], { axis: 0 });
  const sq = b.mul(row0, row0);
  return b.reduceAxesOp(
    'ReduceMean',
    sq,
    b.dims(sq).map((_, i) => i),
    false,
  );
}

/** A_k = attention [2,hw,T] x token_select [2,T,K] -> [2,hw,K]: the column of each subject's placeholder. */
export function selectTokenMaps(b: Builder, probs: string, tokenSelect: string): string {
  return b.op('MatMul', [probs, tokenSelect]);
}

/** norm(A_k) = A_k / max(max_hw A_k, eps), per row and subject (maps [2,hw,K]). */
export function normalizeMaps(b: Builder, maps: string): string {
  const peak = b.reduceAxesOp('ReduceMax', maps, [1], true);
  return b.div(maps, b.op('Max', [peak, b.scalar(NORMALIZE_EPS, FLOAT)]));
}

/** Row `row` of maps [B,hw,K] as [K,hw]. */
export function mapsOfRow(b: Builder, maps: string, row: 0 | 1): string {
  const r = b.op('Gather', [maps, b.constant(scalar(DataType.INT64, row), `row${row}`)], { axis: 0 });
  return b.transpose(r, [1, 0]);
}

/**
 * sum_k w_k * mean_hw (left_k - target_k)^2 for left, target [K,hw], weight [K]: the form shared by
 * L_M2A (left = norm(A), target = M), L_ICA (target = g(M * A(c_hat))) and L_AUG (same on the augmented row).
 */
export function weightedMapLoss(b: Builder, left: string, target: string, weight: string): string {
  const d = b.sub(left, target);
  const perSubject = b.reduceAxesOp('ReduceMean', b.mul(d, d), [1], false);
  return b.reduceSum(b.mul(perSubject, weight), [0], false);
}

/**
 * g(M_k * A_k(c_hat)) of both rows (METHOD.md "Losses", L_ICA / L_AUG targets), g(x) = x / max(max x, eps):
 * A_k(c_hat) = classProbs [2,hw,T] x classSelect [2,T,K] (a class word of several sub-tokens sums its
 * columns), masked per row by `masks` ([K,hw] each). No gradient flows here: the frozen branch reads no
 * trainable tensor. Equals classMapTarget (class-map.ts), which computes it on the host.
 */
export function classTargets(b: Builder, classProbs: string, classSelect: string, masks: [string, string], rows: [0 | 1, 0 | 1] = [0, 1]): [string, string] {
  const maps = selectTokenMaps(b, classProbs, classSelect);
  const target = (which: 0 | 1) => {
    const masked = b.mul(mapsOfRow(b, maps, rows[which]), masks[which]);
    const peak = b.reduceAxesOp('ReduceMax', masked, [1], true);
    return b.div(masked, b.op('Max', [peak, b.scalar(NORMALIZE_EPS, FLOAT)]));
  };
  return [target(0), target(1)];
}

/** L = lambdas . [L_MD, L_M2A, L_ICA, L_AUG] (METHOD.md: 1, 1e-2, 5e-3, 1e-4 by default). */
export function weightedTotal(b: Builder, terms: string[], lambdas: string): string {
  const stacked = b.op(
    'Concat',
    terms.map((t) => b.unsqueeze(t, [0])),
    { axis: 0 },
  );
  return b.reduceSum(b.mul(stacked, lambdas), [0], false);
}

/** Loss inputs' shapes for a UNet prediction of [2,C,h,w], hw attention cells, T tokens and K subjects. */
export function lossInputShapes(latent: number[], hw: number, tokens: number, K: number, frozenInGraph = false): Record<string, number[]> {
  const [B, C, h, w] = latent as [number, number, number, number];
  const targets: Record<string, number[]> = frozenInGraph
    ? { [LOSS_INPUTS.classSelect]: [B, tokens, K], [LOSS_INPUTS.augMask]: [K, hw] }
    : { [LOSS_INPUTS.icaTarget]: [K, hw], [LOSS_INPUTS.augTarget]: [K, hw] };
  return {
    [LOSS_INPUTS.target]: [B, C, h, w],
    [LOSS_INPUTS.mdMask]: [B, 1, h, w],
    [LOSS_INPUTS.tokenSelect]: [B, tokens, K],
    [LOSS_INPUTS.m2aTarget]: [K, hw],
    ...targets,
    [LOSS_INPUTS.m2aWeight]: [K],
    [LOSS_INPUTS.icaWeight]: [K],
    [LOSS_INPUTS.augWeight]: [K],
    [LOSS_INPUTS.lambdas]: [4],
  };
}

/**
 * Add the loss inputs, nodes and outputs (LOSS_OUTPUTS) to `graph`. `types` holds the static types of the
 * graph's tensors (at least of the prediction and the attention probabilities); it is extended in place.
 */
export function appendLossSubgraph(graph: Graph, opset: number, types: Map<string, TensorType>, options: LossSubgraphOptions): void {
  const predType = types.get(options.prediction);
  const probsType = types.get(options.attentionProbs);
  if (!predType || !probsType)
    throw new DiffusionError('BAD_ARGUMENT', `appendLossSubgraph: no static type for ${predType ? options.attentionProbs : options.prediction}`);
  const [B, hw, tokens] = probsType.dims as [number, number, number];
  if (B !== 1 && B !== 2) throw new DiffusionError('BAD_ARGUMENT', `appendLossSubgraph: the graph has batch ${B}; the loss takes 2 rows or 1`);
  // At batch 1 the one row plays either part, the reference's (L_MD, L_M2A, L_ICA) or the augmented image's
  // (L_AUG): the feeds' weights and masks zero the other part's terms (batch.ts splitRows).
  const augRow = B === 1 ? 0 : 1;
  const shapes = lossInputShapes(predType.dims, hw, tokens, options.maxSubjects, options.classAttentionProbs !== undefined);
  for (const [name, dims] of Object.entries(shapes)) {
    graph.addInput({ name, dtype: FLOAT, shape: dims });
    types.set(name, { dtype: FLOAT, dims });
  }
  const b = new Builder(graph, opset, types, new Map(), 'loss');
  const I = LOSS_INPUTS;
  // fp16 models: the losses are computed in float32, like the host-side targets
  const pred = b.cast(options.prediction, FLOAT);
  const probs = b.cast(options.attentionProbs, FLOAT);

  const md = maskedDiffusionLoss(b, pred, I.target, I.mdMask);
  const maps = selectTokenMaps(b, probs, I.tokenSelect);
  const norm = normalizeMaps(b, maps);
  const icaSide = options.icaNormalizeBoth ? norm : maps;
  const [icaTarget, augTarget] =
    options.classAttentionProbs !== undefined
      ? classTargets(b, b.cast(options.classAttentionProbs, FLOAT), I.classSelect, [I.m2aTarget, I.augMask], [0, augRow])
      : [I.icaTarget, I.augTarget];
  const m2a = weightedMapLoss(b, mapsOfRow(b, norm, 0), I.m2aTarget, I.m2aWeight);
  const ica = weightedMapLoss(b, mapsOfRow(b, icaSide, 0), icaTarget, I.icaWeight);
  const aug = weightedMapLoss(b, mapsOfRow(b, icaSide, augRow), augTarget, I.augWeight);
  const total = weightedTotal(b, [md, m2a, ica, aug], I.lambdas);

  const O = LOSS_OUTPUTS;
  const named: [string, string][] = [
    [total, O.loss],
    [md, O.md],
    [m2a, O.m2a],
    [ica, O.ica],
    [aug, O.aug],
    [maps, O.attention],
  ];
  for (const [from, to] of named) {
    graph.addNode({ opType: 'Identity', inputs: [from], outputs: [to], name: `loss/${to}` });
    const t = b.type(from);
    types.set(to, t);
    graph.addOutput({ name: to, dtype: t.dtype, shape: [...t.dims] });
  }
}
