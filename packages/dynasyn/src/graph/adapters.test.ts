/** LoRA placement on the tiny bundle's graphs: finding projections (by name, by structure), inserting adapters. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, initializerToHost, loadModel, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { createTinyBundle, GaussianRng } from '@dynasyn/diffusion';
import { adapterTargets, addTrainableAdapters, applyAdapters, cloneModel } from './adapters.js';

let dir: string;
let textEncoder: OnnxModel;
let unet: OnnxModel;
let vocabSize: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graph-adapters-'));
  ({ vocabSize } = await createTinyBundle(dir, { seed: 5 }));
  textEncoder = loadModel(path.join(dir, 'text_encoder', 'model.onnx'));
  unet = loadModel(path.join(dir, 'unet', 'model.onnx'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The same graph with node names that say nothing (another exporter). */
function stripNodeNames(model: OnnxModel): OnnxModel {
  const m = cloneModel(model);
  m.graph.nodes = m.graph.nodes.map((n, i) => ({ ...n, name: `node_${i}` }));
  return m;
}

const summary = (ts: { weight: string; role: string }[]) => ts.map((t) => `${t.weight}:${t.role}`).sort();

test('finds q, k, v, out of every attention: UNet attn1 + attn2 (10 transformer blocks), text encoder self-attention', () => {
  const u = adapterTargets(unet);
  expect(u).toHaveLength(80);
  for (const role of ['q', 'k', 'v', 'out']) expect(u.filter((t) => t.role === role)).toHaveLength(20);
  expect(u.filter((t) => /attn2\/to_k$/.test(t.scope)).every((t) => t.inFeatures === 64)).toBe(true); // context width
  const te = adapterTargets(textEncoder);
  expect(te.map((t) => t.scope)).toEqual(
    ['0', '1'].flatMap((l) => ['q_proj', 'k_proj', 'v_proj', 'out_proj'].map((p) => `text_model/encoder/layers.${l}/self_attn/${p}`)),
  );
});

test('without scope names, the structure around each Softmax finds the same projections', () => {
  expect(summary(adapterTargets(stripNodeNames(unet)))).toEqual(summary(adapterTargets(unet)));
  expect(summary(adapterTargets(stripNodeNames(textEncoder)))).toEqual(summary(adapterTargets(textEncoder)));
});

async function encode(model: OnnxModel, ids: BigInt64Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(serializeModel(model));
  try {
    const out = await s.run({ input_ids: new ort.Tensor('int64', ids, [1, 77]) });
    return out.last_hidden_state!.data as Float32Array;
  } finally {
    await s.release();
  }
}

test('applyAdapters computes x (W + scale A B): equal to the model with merged weights; B = 0 changes nothing', async () => {
  const ids = BigInt64Array.from([vocabSize - 2, 4, 9, 17, ...new Array<number>(73).fill(vocabSize - 1)].map(BigInt));
  const added = addTrainableAdapters(textEncoder, 'text_encoder', { rank: 2, alpha: 3, seed: 1 });
  expect(added.specs.every((s) => s.scale === 1.5)).toBe(true);
  const base = await encode(textEncoder, ids);
  expect(await encode(applyAdapters(textEncoder, added.specs, added.startValues), ids)).toEqual(base);

  const rng = new GaussianRng(9);
  const values = new Map<string, HostTensor>();
  for (const [k, v] of added.startValues) values.set(k, { ...v, data: Float32Array.from({ length: v.data.length }, () => 0.2 * rng.normal()) });
  const adapted = await encode(applyAdapters(textEncoder, added.specs, values, 'text_encoder'), ids);
  const merged = cloneModel(textEncoder);
  for (const s of added.specs) {
    const w = initializerToHost(merged.graph.initializers.get(s.weight)!);
    const a = values.get(s.a)!,
      b = values.get(s.b)!;
    const [n, m] = w.dims as [number, number];
    const r = a.dims[1]!;
    const out = Float32Array.from(w.data as Float32Array);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += (a.data as Float32Array)[i * r + k]! * (b.data as Float32Array)[k * m + j]!;
        out[i * m + j]! += s.scale * acc;
      }
    merged.graph.initializers.set(s.weight, { name: s.weight, dtype: DataType.FLOAT, dims: [n, m], data: new Uint8Array(out.buffer) });
  }
  const want = await encode(merged, ids);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(adapted[i]! - want[i]!));
  expect(worst).toBeLessThan(1e-4);
  expect(Math.max(...adapted.map((v, i) => Math.abs(v - base[i]!)))).toBeGreaterThan(1e-2); // the adapters do something
});

test('start values: B = 0, A ~ N(0, 1/r^2) seeded per tensor; the graph gets A and B as inputs', () => {
  const r = 4;
  const one = addTrainableAdapters(unet, 'unet', { rank: r, seed: 7 });
  const again = addTrainableAdapters(unet, 'unet', { rank: r, seed: 7 });
  const other = addTrainableAdapters(unet, 'unet', { rank: r, seed: 8 });
  const a = one.specs.flatMap((s) => [...(one.startValues.get(s.a)!.data as Float32Array)]);
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  const std = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length);
  expect(Math.abs(mean)).toBeLessThan(0.01);
  expect(std).toBeCloseTo(1 / r, 2);
  expect(one.specs.every((s) => (one.startValues.get(s.b)!.data as Float32Array).every((v) => v === 0))).toBe(true);
  expect(again.startValues.get(one.specs[0]!.a)!.data).toEqual(one.startValues.get(one.specs[0]!.a)!.data);
  expect(other.startValues.get(one.specs[0]!.a)!.data).not.toEqual(one.startValues.get(one.specs[0]!.a)!.data);
  const inputs = one.model.graph.inputs.map((v) => v.name);
  for (const s of one.specs) expect(inputs).toEqual(expect.arrayContaining([s.a, s.b]));
  expect(unet.graph.inputs).toHaveLength(3); // the original is untouched
});

test('applyAdapters names what does not fit', () => {
  const added = addTrainableAdapters(textEncoder, 'text_encoder', { rank: 2 });
  const missing = new Map(added.startValues);
  missing.delete(added.specs[0]!.b);
  expect(() => applyAdapters(textEncoder, added.specs, missing)).toThrow(/no value for adapter tensor .*q_proj\/B/);
  const wrong = new Map(added.startValues);
  wrong.set(added.specs[0]!.a, { dtype: DataType.FLOAT, dims: [3, 2], data: new Float32Array(6) });
  expect(() => applyAdapters(textEncoder, added.specs, wrong)).toThrow(/is \[3,2\], which does not fit weight/);
});
