/**
 * Both surgeries on the tiny bundle's models (src/tiny/: graphs built in TypeScript with diffusers-style scope
 * names, GroupNorm as InstanceNormalization, symbolic batch), i.e. on a second exporter's graphs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, type OnnxModel } from '@dynasyn/ort-training';
import { createTinyBundle, TINY_BUNDLE_FACTS } from '../tiny/index.js';
import { placeholderStartValues, withPlaceholderEmbeddings } from './placeholders.js';
import { withAttentionCapture } from './attention.js';
import { findCrossAttentionLayers } from './attention-layers.js';
import { relativeError, runModel, stripNames, toOrt } from '../testing/fixtures.js';

let dir: string;
let vocabSize: number;
let textEncoder: OnnxModel;
let unet: OnnxModel;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'surgery-tiny-'));
  ({ vocabSize } = await createTinyBundle(dir, { seed: 3 }));
  textEncoder = loadModel(path.join(dir, 'text_encoder', 'model.onnx'));
  unet = loadModel(path.join(dir, 'unet', 'model.onnx'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const L = TINY_BUNDLE_FACTS.maxTokens;

test('placeholder rows set to the rows of tokens t_i encode like the prompt with t_i', async () => {
  const V = vocabSize,
    bos = V - 2,
    eos = V - 1;
  const edited = withPlaceholderEmbeddings(textEncoder, { numPlaceholders: 2, baseVocabSize: V });
  const pad = (ids: number[]) => [...ids, ...Array<number>(L - ids.length).fill(eos)];
  const ids = (rows: number[][]) => toOrt({ dims: [rows.length, L], data: BigInt64Array.from(rows.flat().map(BigInt)) });
  const start = placeholderStartValues(textEncoder, [11, 23]);
  const ours = await runModel(edited.model, {
    input_ids: ids([pad([bos, 4, V, 5, V + 1, eos])]),
    placeholder_embeddings: toOrt({ dims: start.dims, data: start.data as Float32Array }),
  });
  const base = await runModel(textEncoder, { input_ids: ids([pad([bos, 4, 11, 5, 23, eos])]) });
  for (const name of textEncoder.graph.outputs.map((o) => o.name)) {
    expect(relativeError(ours[name]!.data as Float32Array, base[name]!.data as Float32Array)).toBeLessThan(1e-6);
  }
});

test('attention capture at the default grid (latent/4) averages the down and up layers into probabilities', async () => {
  const { latentSize, latentChannels, textEmbedDim } = TINY_BUNDLE_FACTS;
  const B = 2;
  const inputShapes = { sample: [B, latentChannels, latentSize, latentSize], timestep: [B], encoder_hidden_states: [B, L, textEmbedDim] };
  const capture = withAttentionCapture(unet, { inputShapes });
  const side = latentSize / 4;
  expect(capture.layers.length).toBeGreaterThanOrEqual(2);
  expect(capture.layers.every((l) => l.grid[0] === side && l.grid[1] === side && l.block !== 'mid')).toBe(true);
  expect(new Set(capture.layers.map((l) => l.block))).toEqual(new Set(['down', 'up']));
  // the same layers, blocks and grids are found by structure when the names are gone
  const describe = (ls: ReturnType<typeof findCrossAttentionLayers>) => ls.map((l) => [l.block, l.grid, l.heads, l.layout]);
  expect(describe(findCrossAttentionLayers(stripNames(unet), inputShapes))).toEqual(describe(findCrossAttentionLayers(unet, inputShapes)));

  let s = 1;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 48271) % 2147483647) / 2147483647) * 2 - 1);
  const out = await runModel(capture.model, {
    sample: toOrt({ dims: inputShapes.sample, data: rand(B * latentChannels * latentSize * latentSize) }),
    timestep: toOrt({ dims: [B], data: BigInt64Array.from([500n, 20n]) }),
    encoder_hidden_states: toOrt({ dims: inputShapes.encoder_hidden_states, data: rand(B * L * textEmbedDim) }),
  });
  const probs = out[capture.outputName]!;
  expect(probs.dims).toEqual([B, side * side, L]);
  const p = probs.data as Float32Array;
  // a mean of softmaxes over the 77 tokens: every row is a probability distribution
  for (let r = 0; r < B * side * side; r++) {
    const row = p.subarray(r * L, (r + 1) * L);
    expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    expect(row.every((v) => v >= 0)).toBe(true);
  }
});
