/**
 * The composed training graphs on the tiny bundle, through ort-training's TrainingSession as the trainer
 * uses them: every term equals the host reference computed from the standalone runtime ClipTextEncoder/Unet,
 * gradients reach exactly the placeholder rows in the prompts, phase 2 with B = 0 is phase 1, and the
 * class-map graph is the frozen original model. Sessions are shared (deriving a graph takes seconds).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, TrainingSession, isExternal, loadModel, saveModel, type HostTensor, type Initializer, type StepResult } from '@dynasyn/ort-training';
import { createTinyBundle, GaussianRng, loadBundle, placeholderStartValues, ClipTextEncoder, Unet, type ModelBundle } from '@dynasyn/diffusion';
import { buildTrainingModel, type TrainingModel } from './training-model.js';
import { buildClassMapModel, classMapTarget } from './class-map.js';
import { hasExternalData, modelSource } from './save.js';
import { lossesReference } from './losses-reference.js';
import { LOSS_OUTPUTS } from './losses.js';

const P = 3; // placeholder 0 in row 0, placeholder 1 in row 1, placeholder 2 in neither
const T = 77;
let dir: string;
let bundle: ModelBundle;
let V: number;
let phase1: TrainingModel;
let phase2: TrainingModel;
let s1: TrainingSession;
let s2: TrainingSession;
let r1: StepResult;
const timings: Record<string, number> = {};

const keep = [LOSS_OUTPUTS.md, LOSS_OUTPUTS.m2a, LOSS_OUTPUTS.ica, LOSS_OUTPUTS.aug, LOSS_OUTPUTS.attention];
const timed = async <R>(label: string, f: () => Promise<R> | R): Promise<R> => {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
};

const rng = new GaussianRng(42);
const f32 = (dims: number[], f: (i: number) => number): HostTensor => ({
  dtype: DataType.FLOAT,
  dims,
  data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});
const C = 4,
  h = 32,
  w = 32,
  hw = 64,
  K = P;
const prompt = (ids: number[]) => [V - 2, ...ids, ...new Array<number>(T - 1 - ids.length).fill(V - 1)];
let rows: number[][];
let feeds: Record<string, HostTensor>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graph-training-'));
  ({ vocabSize: V } = await createTinyBundle(dir, { seed: 1 }));
  // weights in external data files, as SD's: the graphs must reference them, and sessions find them
  for (const m of ['text_encoder', 'unet']) saveModel(loadModel(path.join(dir, m, 'model.onnx')), path.join(dir, m, 'model.onnx'), { externalizeAbove: 1024 });
  bundle = loadBundle(dir);
  rows = [prompt([4, V, 5]), prompt([4, V + 1, 5])]; // `... <asset0> ...` / `... <asset1> ...`
  const select = new Float32Array(2 * T * K);
  select[(0 * T + 2) * K + 0] = 1; // row 0: subject 0 at position 2
  select[(1 * T + 2) * K + 1] = 1; // row 1: subject 1 at position 2
  const bit = () => (rng.uniform() < 0.5 ? 1 : 0);
  feeds = {
    input_ids: { dtype: DataType.INT64, dims: [2, T], data: BigInt64Array.from(rows.flat().map(BigInt)) },
    noisy_latents: f32([2, C, h, w], () => rng.normal()),
    timestep: { dtype: DataType.INT64, dims: [2], data: BigInt64Array.from([500n, 120n]) },
    target: f32([2, C, h, w], () => rng.normal()),
    md_mask: f32([2, 1, h, w], (i) => (i < h * w ? bit() : 0)),
    token_select: { dtype: DataType.FLOAT, dims: [2, T, K], data: select },
    m2a_target: f32([K, hw], bit),
    ica_target: f32([K, hw], () => rng.uniform()),
    aug_target: f32([K, hw], () => rng.uniform()),
    m2a_weight: f32([K], (i) => (i === 0 ? 1 : 0)),
    ica_weight: f32([K], (i) => (i === 0 ? 1 : 0)),
    aug_weight: f32([K], (i) => (i === 1 ? 1 : 0)),
    lambdas: f32([4], (i) => [1, 0.5, 0.5, 0.5][i]!),
  };
  const cacheDir = path.join(dir, 'cache');
  // targets fed (frozenInGraph: false): these tests check the loss terms against host references; the frozen
  // branch that computes the targets in the graph is checked against this path in train/trainer.test.ts
  phase1 = await timed('build phase 1', () =>
    buildTrainingModel(bundle, { numPlaceholders: P, baseVocabSize: V, phase: 1, placeholderTokenIds: [11, 23, 31], frozenInGraph: false }),
  );
  phase2 = await timed('build phase 2', () =>
    buildTrainingModel(bundle, {
      numPlaceholders: P,
      baseVocabSize: V,
      phase: 2,
      placeholderTokenIds: [11, 23, 31],
      adapters: { mode: 'lora', rank: 2, targets: ['unet', 'text_encoder'] },
      frozenInGraph: false,
    }),
  );
  s1 = await timed('derive + session phase 1', () =>
    TrainingSession.create({ model: phase1.model, loss: phase1.outputs.loss, trainable: phase1.trainable, keepOutputs: keep, cacheDir }),
  );
  s2 = await timed('derive + session phase 2', () =>
    TrainingSession.create({ model: phase2.model, loss: phase2.outputs.loss, trainable: phase2.trainable, keepOutputs: keep, cacheDir }),
  );
  for (const [k, v] of phase1.startValues) s1.setTrainable(k, v);
  for (const [k, v] of phase2.startValues) s2.setTrainable(k, v);
  r1 = await timed('step phase 1', () => s1.step(feeds));
});
afterAll(async () => {
  await s1?.release();
  await s2?.release();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`graph timings (ms): ${JSON.stringify(timings)}`);
});

const sameData = (a: Initializer, b: Initializer) =>
  isExternal(a.data) || isExternal(b.data) ? JSON.stringify(a.data) === JSON.stringify(b.data) : Buffer.from(a.data).equals(b.data);
const num = (r: StepResult, name: string) => Number((r.outputs.get(name)!.data as Float32Array)[0]);
const closeTo = (got: number, want: number, rel = 1e-5) => expect(Math.abs(got - want)).toBeLessThanOrEqual(rel * Math.max(1e-3, Math.abs(want)));

test("'full' mode trains the chosen weights directly (exact names or /regex/, original or merged names)", () => {
  const full = buildTrainingModel(bundle, {
    numPlaceholders: P,
    baseVocabSize: V,
    phase: 2,
    adapters: { mode: 'full', rank: 4, targets: [], fullTensors: ['/attn2\\.to_out\\.0\\.bias$/', 'text_model.final_layer_norm.weight', 'unet/conv_in.bias'] },
  });
  expect(full.adapters).toEqual([]);
  expect(full.trainable[0]).toBe('placeholder_embeddings');
  expect(full.trainable).toContain('text_encoder/text_model.final_layer_norm.weight');
  expect(full.trainable).toContain('unet/conv_in.bias');
  expect(full.trainable.filter((t) => t.endsWith('attn2.to_out.0.bias'))).toHaveLength(10);
  for (const t of full.trainable.slice(1)) expect(full.model.graph.initializers.has(t)).toBe(true);
  expect(() =>
    buildTrainingModel(bundle, {
      numPlaceholders: P,
      baseVocabSize: V,
      phase: 2,
      adapters: { mode: 'full', rank: 4, targets: [], fullTensors: ['no_such_weight'] },
    }),
  ).toThrow(/full-mode tensor no_such_weight matches no weight/);
});

test('the inputs and outputs the trainer feeds and reads', () => {
  expect(phase1.trainable).toEqual(['placeholder_embeddings']);
  expect(phase1.inputs.tokenSelect).toEqual({ name: 'token_select', dtype: DataType.FLOAT, dims: [2, T, K] });
  expect(phase1.inputs.noisyLatents.dims).toEqual([2, C, h, w]);
  expect(phase1.inputs.m2aTarget.dims).toEqual([K, hw]);
  expect(phase1.grid).toEqual([8, 8]);
  expect(phase1.adapters).toEqual([]);
  expect(s1.inputNames.sort()).toEqual(Object.keys(feeds).sort());
  expect(phase1.startValues.get('placeholder_embeddings')).toEqual(placeholderStartValues(loadModel(bundle.textEncoderPath), [11, 23, 31]));
  expect(phase2.adapters).toHaveLength(88); // 80 UNet projections + 8 text encoder projections
  expect(phase2.trainable).toHaveLength(1 + 2 * 88);
});

test('every term equals the host reference on the standalone runtime ClipTextEncoder + Unet (md = the UNet prediction loss)', async () => {
  const enc = await ClipTextEncoder.create(bundle, { placeholders: P, baseVocabSize: V });
  const unet = await Unet.create(bundle, { captureAttention: {} });
  try {
    const hidden = await enc.encode(rows, phase1.startValues.get('placeholder_embeddings')!.data as Float32Array);
    const out = await unet.predict({ dims: [2, C, h, w], data: feeds.noisy_latents!.data as Float32Array }, [500, 120], hidden);
    const d = (n: string) => feeds[n]!.data as Float32Array;
    const want = lossesReference({
      prediction: out.noise.data,
      latentDims: [2, C, h, w],
      attentionProbs: out.attention!.probs.data,
      hw,
      tokens: T,
      K,
      target: d('target'),
      mdMask: d('md_mask'),
      tokenSelect: d('token_select'),
      m2aTarget: d('m2a_target'),
      icaTarget: d('ica_target'),
      augTarget: d('aug_target'),
      m2aWeight: d('m2a_weight'),
      icaWeight: d('ica_weight'),
      augWeight: d('aug_weight'),
      lambdas: d('lambdas'),
      icaNormalizeBoth: true,
    });
    closeTo(num(r1, LOSS_OUTPUTS.md), want.md);
    closeTo(num(r1, LOSS_OUTPUTS.m2a), want.m2a);
    closeTo(num(r1, LOSS_OUTPUTS.ica), want.ica);
    closeTo(num(r1, LOSS_OUTPUTS.aug), want.aug);
    closeTo(r1.loss, want.loss);
    expect(want.md).toBeGreaterThan(0);
    expect(want.aug).toBeGreaterThan(0);
    const att = r1.outputs.get(LOSS_OUTPUTS.attention)!;
    expect(att.dims).toEqual([2, hw, K]);
    closeTo((att.data as Float32Array)[(1 * hw + 10) * K + 1]!, want.maps[1]![1]![10]!);
  } finally {
    await enc.release();
    await unet.release();
  }
});

test('phase 1: gradients only on the rows of placeholders that appear in the prompts', () => {
  const g = r1.grads.get('placeholder_embeddings')!;
  expect(g.dims).toEqual([P, 64]);
  const rowNorm = (r: number) => Math.hypot(...(g.data as Float32Array).subarray(r * 64, (r + 1) * 64));
  expect(rowNorm(0)).toBeGreaterThan(1e-6);
  expect(rowNorm(1)).toBeGreaterThan(1e-6);
  expect(rowNorm(2)).toBe(0);
});

test('phase 2 (LoRA, B = 0) gives the phase-1 outputs; gradients reach B, and A once B is non-zero', async () => {
  const r2 = await timed('step phase 2', () => s2.step(feeds));
  for (const k of [LOSS_OUTPUTS.md, LOSS_OUTPUTS.m2a, LOSS_OUTPUTS.ica, LOSS_OUTPUTS.aug]) closeTo(num(r2, k), num(r1, k), 1e-6);
  closeTo(r2.loss, r1.loss, 1e-6);
  const p1 = r1.grads.get('placeholder_embeddings')!.data as Float32Array;
  const p2 = r2.grads.get('placeholder_embeddings')!.data as Float32Array;
  p1.forEach((v, i) => closeTo(p2[i]!, v, 1e-4));
  const norm = (t: HostTensor) => Math.hypot(...(t.data as Float32Array));
  const aGrads = phase2.adapters.map((s) => norm(r2.grads.get(s.a)!));
  const bGrads = phase2.adapters.map((s) => norm(r2.grads.get(s.b)!));
  expect(aGrads.every((v) => v === 0)).toBe(true); // dL/dA = x^T (dY B^T) = 0 while B = 0
  expect(bGrads.filter((v) => v > 0).length).toBe(phase2.adapters.length);

  const rng2 = new GaussianRng(3);
  for (const s of phase2.adapters) {
    const b = s2.getTrainable(s.b);
    s2.setTrainable(s.b, { ...b, data: Float32Array.from(b.data as Float32Array, () => 0.05 * rng2.normal()) });
  }
  const r3 = await s2.step(feeds);
  expect(phase2.adapters.map((s) => norm(r3.grads.get(s.a)!)).filter((v) => v > 0).length).toBe(phase2.adapters.length);
  expect(r3.loss).not.toBeCloseTo(r1.loss, 6);
});

test('the class-map graph is the frozen original: runtime Unet maps of the class prompt, no trainable input', async () => {
  const cm = await timed('build class map', () => buildClassMapModel(bundle, { grid: phase1.grid, batch: 2 }));
  expect(cm.model.graph.inputs.map((v) => v.name)).toEqual(['input_ids', 'noisy_latents', 'timestep']);
  const original = [loadModel(bundle.textEncoderPath), loadModel(bundle.unetPath)];
  let externals = 0;
  for (const [name, init] of cm.model.graph.initializers) {
    const bare = name.replace(/^(text_encoder|unet)\//, '');
    const src = (name.startsWith('text_encoder/') ? original[0] : original[1])!.graph.initializers.get(bare);
    if (!src) continue; // constants added by the attention capture
    expect(sameData(init, src)).toBe(true); // the bundle's weights, unchanged
    if (isExternal(init.data)) externals++;
  }
  expect(externals).toBeGreaterThan(100);
  const classRows = [prompt([4, 11, 5]), prompt([4, 23, 5])]; // class words in place of <asset0>, <asset1>
  expect(hasExternalData(cm.model)).toBe(true);
  const source = modelSource(cm.model, path.join(dir, 'class-map'), 'class_map');
  expect(source).toBe(path.join(dir, 'class-map', 'class_map.onnx'));
  const session = await ort.InferenceSession.create(source as string);
  const run = async () =>
    (
      await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(classRows.flat().map(BigInt)), [2, T]),
        noisy_latents: new ort.Tensor('float32', feeds.noisy_latents!.data as Float32Array, [2, C, h, w]),
        timestep: new ort.Tensor('int64', feeds.timestep!.data as BigInt64Array, [2]),
      })
    )[cm.output]!;
  const maps = await timed('class map forward', run);
  expect(maps.dims).toEqual([2, hw, T]);

  const enc = await ClipTextEncoder.create(bundle);
  const unet = await Unet.create(bundle, { captureAttention: { grid: cm.grid } });
  try {
    const out = await unet.predict({ dims: [2, C, h, w], data: feeds.noisy_latents!.data as Float32Array }, [500, 120], await enc.encode(classRows));
    const want = out.attention!.probs.data;
    const got = maps.data as Float32Array;
    expect(want.reduce((m, v, i) => Math.max(m, Math.abs(got[i]! - v)), 0)).toBeLessThan(1e-6);
  } finally {
    await enc.release();
    await unet.release();
  }

  // placeholders holding the class words' rows attend exactly like the class words
  const att = r1.outputs.get(LOSS_OUTPUTS.attention)!.data as Float32Array;
  const got = maps.data as Float32Array;
  for (let p = 0; p < hw; p++) {
    closeTo(att[(0 * hw + p) * K + 0]!, got[(0 * hw + p) * T + 2]!, 1e-4);
    closeTo(att[(1 * hw + p) * K + 1]!, got[(1 * hw + p) * T + 2]!, 1e-4);
  }
  // training moves the placeholders; the class-map graph cannot see them
  const moved = s1.getTrainable('placeholder_embeddings');
  s1.setTrainable('placeholder_embeddings', { ...moved, data: Float32Array.from(moved.data as Float32Array, (v) => v + rng.normal()) }); // (a constant shift would be a no-op: LayerNorm)
  const r = await s1.step(feeds);
  const before = r1.outputs.get(LOSS_OUTPUTS.attention)!.data as Float32Array;
  expect((r.outputs.get(LOSS_OUTPUTS.attention)!.data as Float32Array).some((v, i) => Math.abs(v - before[i]!) > 1e-5)).toBe(true);
  expect(Buffer.from((await run()).data as Float32Array).equals(Buffer.from(maps.data as Float32Array))).toBe(true);
  expect(
    classMapTarget(maps as unknown as { dims: number[]; data: Float32Array }, 2, new Array<number>(hw).fill(1), 1).reduce((a, b) => Math.max(a, b), 0),
  ).toBeCloseTo(1, 6);
  await session.release();
});
