/**
 * A tiny random CLIP pair in ONNX, in the layouts ClipModel accepts: a text model (token embedding,
 * attention-masked mean pool, projection -> text_embeds) and a vision model (patch convolution, mean over
 * patches, projection -> image_embeds), separate or as one combined model. The weights are returned so
 * tests can compute the embeddings independently.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTinyTokenizer } from '@dynasyn/diffusion';
import { DataType, Graph, attrs, fromNumbers, initializerFromHost, saveModel, type OnnxModel } from '@dynasyn/ort-training';

export interface TinyClipWeights {
  vocabSize: number;
  /** [vocab, D] */
  embedding: Float32Array;
  /** [D, E] */
  textProjection: Float32Array;
  /** [C, 3, P, P] */
  patch: Float32Array;
  /** [C, E] */
  visualProjection: Float32Array;
  dims: { D: number; E: number; C: number; P: number; S: number };
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

function addText(g: Graph, w: TinyClipWeights, T: number): void {
  const { D, E } = w.dims;
  g.inputs.push({ name: 'input_ids', dtype: DataType.INT64, shape: ['batch', T] }, { name: 'attention_mask', dtype: DataType.INT64, shape: ['batch', T] });
  g.initializers.set('embed', initializerFromHost('embed', fromNumbers(DataType.FLOAT, [w.vocabSize, D], w.embedding)));
  g.initializers.set('text_proj', initializerFromHost('text_proj', fromNumbers(DataType.FLOAT, [D, E], w.textProjection)));
  g.initializers.set('axes_1', initializerFromHost('axes_1', fromNumbers(DataType.INT64, [1], [1])));
  g.initializers.set('axes_last', initializerFromHost('axes_last', fromNumbers(DataType.INT64, [1], [-1])));
  g.addNode({ opType: 'Gather', inputs: ['embed', 'input_ids'], outputs: ['tok'], attributes: attrs({ axis: 0 }) });
  g.addNode({ opType: 'Cast', inputs: ['attention_mask'], outputs: ['maskf'], attributes: attrs({ to: DataType.FLOAT }) });
  g.addNode({ opType: 'Unsqueeze', inputs: ['maskf', 'axes_last'], outputs: ['mask3'] });
  g.addNode({ opType: 'Mul', inputs: ['tok', 'mask3'], outputs: ['masked'] });
  g.addNode({ opType: 'ReduceSum', inputs: ['masked', 'axes_1'], outputs: ['summed'], attributes: attrs({ keepdims: 0 }) });
  g.addNode({ opType: 'ReduceSum', inputs: ['mask3', 'axes_1'], outputs: ['count'], attributes: attrs({ keepdims: 0 }) });
  g.addNode({ opType: 'Div', inputs: ['summed', 'count'], outputs: ['pooled'] });
  g.addNode({ opType: 'MatMul', inputs: ['pooled', 'text_proj'], outputs: ['text_embeds'] });
  g.outputs.push({ name: 'text_embeds', dtype: DataType.FLOAT, shape: ['batch', E] });
}

function addVision(g: Graph, w: TinyClipWeights): void {
  const { C, E, P, S } = w.dims;
  g.inputs.push({ name: 'pixel_values', dtype: DataType.FLOAT, shape: ['batch', 3, S, S] });
  g.initializers.set('patch', initializerFromHost('patch', fromNumbers(DataType.FLOAT, [C, 3, P, P], w.patch)));
  g.initializers.set('visual_proj', initializerFromHost('visual_proj', fromNumbers(DataType.FLOAT, [C, E], w.visualProjection)));
  g.addNode({ opType: 'Conv', inputs: ['pixel_values', 'patch'], outputs: ['patches'], attributes: attrs({ kernel_shape: [P, P], strides: [P, P] }) });
  g.addNode({ opType: 'ReduceMean', inputs: ['patches'], outputs: ['pooled_v'], attributes: attrs({ axes: [2, 3], keepdims: 0 }) });
  g.addNode({ opType: 'MatMul', inputs: ['pooled_v', 'visual_proj'], outputs: ['image_embeds'] });
  g.outputs.push({ name: 'image_embeds', dtype: DataType.FLOAT, shape: ['batch', E] });
}

const model = (graph: Graph): OnnxModel => ({
  irVersion: 8,
  opsetImports: [{ domain: '', version: 17 }],
  producerName: 'dynasyn-tiny-clip',
  producerVersion: '1',
  graph,
  metadata: {},
  extra: {},
});

/**
 * Writes a tiny CLIP folder: tokenizer/ plus `text_model.onnx` + `vision_model.onnx` ('separate') or
 * `onnx/model.onnx` ('combined'). Image side S = 224 (CLIP's), patch 32.
 */
export function writeTinyClip(dir: string, layout: 'separate' | 'combined' = 'separate', seed = 1): TinyClipWeights {
  const { vocabSize } = writeTinyTokenizer(join(dir, 'tokenizer'));
  const D = 16,
    E = 8,
    C = 12,
    P = 32,
    S = 224,
    T = 77;
  const r = seeded(seed);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => r() * scale);
  const w: TinyClipWeights = {
    vocabSize,
    dims: { D, E, C, P, S },
    embedding: fill(vocabSize * D, 1),
    textProjection: fill(D * E, 0.5),
    patch: fill(C * 3 * P * P, 0.05),
    visualProjection: fill(C * E, 0.5),
  };
  if (layout === 'separate') {
    const text = new Graph({ name: 'clip_text' });
    addText(text, w, T);
    saveModel(model(text), join(dir, 'text_model.onnx'));
    const vision = new Graph({ name: 'clip_vision' });
    addVision(vision, w);
    saveModel(model(vision), join(dir, 'vision_model.onnx'));
  } else {
    const g = new Graph({ name: 'clip' });
    addText(g, w, T);
    addVision(g, w);
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    saveModel(model(g), join(dir, 'onnx', 'model.onnx'));
  }
  return w;
}

/** text_embeds computed in plain TypeScript from the weights (masked mean of rows, projection). */
export function referenceTextEmbed(w: TinyClipWeights, ids: ArrayLike<number>, length: number): Float32Array {
  const { D, E } = w.dims;
  const pooled = new Float64Array(D);
  for (let t = 0; t < length; t++) for (let d = 0; d < D; d++) pooled[d]! += w.embedding[ids[t]! * D + d]! / length;
  return project(pooled, w.textProjection, D, E);
}

/** image_embeds from preprocessed pixel_values [3,S,S]: the mean of patch convolutions is the convolution of the mean patch. */
export function referenceImageEmbed(w: TinyClipWeights, pixels: Float32Array): Float32Array {
  const { C, E, P, S } = w.dims;
  const n = S / P;
  const meanPatch = new Float64Array(3 * P * P);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) meanPatch[(c * P + (y % P)) * P + (x % P)]! += pixels[(c * S + y) * S + x]! / (n * n);
  const pooled = new Float64Array(C);
  for (let o = 0; o < C; o++) for (let k = 0; k < 3 * P * P; k++) pooled[o]! += w.patch[o * 3 * P * P + k]! * meanPatch[k]!;
  return project(pooled, w.visualProjection, C, E);
}

function project(v: Float64Array, m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(cols);
  for (let j = 0; j < cols; j++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += v[i]! * m[i * cols + j]!;
    out[j] = s;
  }
  return out;
}
