/**
 * LoRA placement on text encoders other exporters write (packages/diffusion/fixtures/text_encoder_variants,
 * exported by torch.onnx from transformers' CLIPTextModel and from OpenCLIP's tower on nn.MultiheadAttention):
 * every attention gets its adapters (q/k/v/out, or one on the fused in_proj product plus the out_proj Gemm), the
 * adapted graph with B = 0 is the original, and with trained A, B it equals the model with the adapters merged
 * into its weights (what sampling runs), the transposed Gemm weight included.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { DataType, loadModel, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { GaussianRng } from '@dynasyn/diffusion';
import { mergeAdapters } from '../merge-adapters.js';
import { adapterTargets, addTrainableAdapters, applyAdapters, cloneModel } from './adapters.js';

const variants = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../diffusion/fixtures/text_encoder_variants');
const load = (name: string) => loadModel(path.join(variants, name, 'model.onnx'));

async function encode(model: OnnxModel, ids: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(serializeModel(model), { intraOpNumThreads: 1 });
  try {
    const out = await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 77]) });
    return Float32Array.from(out.last_hidden_state!.data as Float32Array);
  } finally {
    await s.release();
  }
}
const prompt = [998, 5, 17, 240, 999, ...new Array<number>(72).fill(0)];
const maxAbsDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

test.each([
  ['clip_hf', ['q', 'k', 'v', 'out']],
  ['openclip_mha', ['qkv', 'out']],
])('%s: one adapter per projection of each of the 2 layers, roles %j', (name, roles) => {
  const targets = adapterTargets(load(name));
  expect(targets).toHaveLength(2 * roles.length);
  expect(targets.map((t) => t.role)).toEqual([...roles, ...roles]);
  if (name === 'openclip_mha') {
    const [qkv, out] = targets as [(typeof targets)[0], (typeof targets)[0]];
    expect([qkv.inFeatures, qkv.outFeatures, qkv.transposed]).toEqual([32, 96, false]); // x [D] -> [q|k|v]
    expect([out.inFeatures, out.outFeatures, out.transposed]).toEqual([32, 32, true]); // Gemm(transB=1) keeps W [out, in]
  }
});

test.each(['clip_hf', 'openclip_mha'])('%s: B = 0 is the original; trained adapters equal merged weights', async (name) => {
  const model = load(name);
  const added = addTrainableAdapters(model, 'text_encoder', { rank: 2, alpha: 4, seed: 3 });
  expect(added.specs.length).toBeGreaterThan(0);
  const base = await encode(model, prompt);
  expect(maxAbsDiff(await encode(applyAdapters(model, added.specs, added.startValues, 'text_encoder'), prompt), base)).toBe(0);

  const rng = new GaussianRng(8);
  const trained = new Map<string, HostTensor>();
  for (const [k, v] of added.startValues) trained.set(k, { ...v, data: Float32Array.from(v.data as Float32Array, (x) => x + 0.2 * rng.normal()) });
  const adapted = await encode(applyAdapters(model, added.specs, trained, 'text_encoder'), prompt);
  expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-3); // the adapters act
  const merged = cloneModel(model);
  expect(mergeAdapters(merged, 'text_encoder', { adapters: trained, adapterSpec: added.specs })).toBe(added.specs.length);
  expect(maxAbsDiff(await encode(merged, prompt), adapted)).toBeLessThan(1e-4);
  expect(merged.graph.initializers.get(added.specs[0]!.weight)!.dtype).toBe(DataType.FLOAT);
});
