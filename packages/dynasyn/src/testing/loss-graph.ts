/**
 * Test helper of src/graph: the loss subgraph alone (prediction and attention probabilities as graph inputs)
 * run in onnxruntime on the host reference's inputs.
 */
import * as ort from 'onnxruntime-node';
import { DataType, Graph, serializeModel, type OnnxModel, type TensorType } from '@dynasyn/ort-training';
import { appendLossSubgraph, LOSS_INPUTS, LOSS_OUTPUTS } from '../graph/losses.js';
import type { LossReferenceInputs } from '../graph/losses-reference.js';

/** A model whose inputs are `prediction`, `attention_probs` and LOSS_INPUTS, outputs LOSS_OUTPUTS. */
export function lossModel(latentDims: number[], hw: number, tokens: number, K: number, icaNormalizeBoth: boolean, opset = 17): OnnxModel {
  const g = new Graph({ name: 'losses' });
  const types = new Map<string, TensorType>();
  for (const [name, dims] of [
    ['prediction', latentDims],
    ['attention_probs', [2, hw, tokens]],
  ] as const) {
    g.addInput({ name, dtype: DataType.FLOAT, shape: [...dims] });
    types.set(name, { dtype: DataType.FLOAT, dims: [...dims] });
  }
  appendLossSubgraph(g, opset, types, { prediction: 'prediction', attentionProbs: 'attention_probs', maxSubjects: K, icaNormalizeBoth });
  return { irVersion: 8, opsetImports: [{ domain: '', version: opset }], producerName: 'test', producerVersion: '0', graph: g, metadata: {}, extra: {} };
}

const f32 = (dims: number[], v: ArrayLike<number>) => new ort.Tensor('float32', Float32Array.from(v), dims);

/** Every loss output of the graph for `x` (terms as numbers, maps as [2,hw,K] floats). */
export async function runLossGraph(
  x: LossReferenceInputs,
  opset = 17,
): Promise<{ loss: number; md: number; m2a: number; ica: number; aug: number; attention: Float32Array }> {
  const { hw, tokens, K, latentDims } = x;
  const [B, , h, w] = latentDims;
  const session = await ort.InferenceSession.create(serializeModel(lossModel(latentDims, hw, tokens, K, x.icaNormalizeBoth, opset)));
  const I = LOSS_INPUTS;
  const feeds = {
    prediction: f32(latentDims, x.prediction),
    attention_probs: f32([2, hw, tokens], x.attentionProbs),
    [I.target]: f32(latentDims, x.target),
    [I.mdMask]: f32([B, 1, h, w], x.mdMask),
    [I.tokenSelect]: f32([2, tokens, K], x.tokenSelect),
    [I.m2aTarget]: f32([K, hw], x.m2aTarget),
    [I.icaTarget]: f32([K, hw], x.icaTarget),
    [I.augTarget]: f32([K, hw], x.augTarget),
    [I.m2aWeight]: f32([K], x.m2aWeight),
    [I.icaWeight]: f32([K], x.icaWeight),
    [I.augWeight]: f32([K], x.augWeight),
    [I.lambdas]: f32([4], x.lambdas),
  };
  try {
    const out = await session.run(feeds);
    const num = (n: string) => Number((out[n]!.data as Float32Array)[0]);
    const O = LOSS_OUTPUTS;
    return { loss: num(O.loss), md: num(O.md), m2a: num(O.m2a), ica: num(O.ica), aug: num(O.aug), attention: out[O.attention]!.data as Float32Array };
  } finally {
    await session.release();
  }
}
