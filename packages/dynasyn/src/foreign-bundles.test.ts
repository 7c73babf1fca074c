/**
 * Whole personalizations (smoke preset: augmentation, GSA, both training phases, sampling with the learned
 * concepts) on bundles whose text encoder another exporter wrote (testing/foreign-text-encoders.ts, shaped
 * like the torch.onnx exports in packages/diffusion/fixtures/text_encoder_variants): a fused q/k/v input
 * projection with no projection names, and a token table padded past the tokenizer's vocabulary; on SD 2.1's
 * structure at small widths (createSdBundle: transformers' text encoder export, CLIP-sized tokenizer) in
 * float16 and as 2.1 (v-prediction); and with a UNet exported to take one float timestep for the batch.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSdBundle, createTinyBundle, findTokenEmbedding, loadBundle, SD21_PRESETS, type SdBundleConfig } from '@dynasyn/diffusion';
import { DataType, fromNumbers, loadModel, saveModel, type OnnxModel } from '@dynasyn/ort-training';
import { adapterTargets } from './graph/index.js';
import { personalize } from './personalize.js';
import { resolveOptions } from './presets.js';
import { fuseProjections, padTokenTable } from './testing/foreign-text-encoders.js';
import { twoSubjectInput } from './testing/two-subjects.js';

let dir: string;
let tinyDir: string;
let vocabSize: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-foreign-'));
  tinyDir = path.join(dir, 'tiny');
  ({ vocabSize } = await createTinyBundle(tinyDir, { seed: 2 }));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A copy of the tiny bundle with its text encoder replaced by `edit(original)`. */
function bundleWith(name: string, edit: (m: OnnxModel) => OnnxModel): string {
  const out = path.join(dir, name);
  fs.cpSync(tinyDir, out, { recursive: true });
  saveModel(edit(loadModel(path.join(tinyDir, 'text_encoder', 'model.onnx'))), path.join(out, 'text_encoder', 'model.onnx'));
  return out;
}

async function personalizeOn(backbone: string) {
  const { image, subjects } = twoSubjectInput();
  return personalize({
    backbone,
    outDir: path.join(backbone, '..', `${path.basename(backbone)}-run`),
    input: { image, subjects: subjects.map((s) => ({ mask: s.mask, classWord: s.classWord })) },
    options: resolveOptions('smoke', { intraOpNumThreads: 1 }),
  });
}

test('a text encoder with a fused q/k/v projection and no projection names: both phases train its adapters, samples are drawn', async () => {
  const backbone = bundleWith('fused', fuseProjections);
  const te = loadModel(loadBundle(backbone).textEncoderPath);
  expect(adapterTargets(te).map((t) => t.role)).toEqual(['qkv', 'out', 'qkv', 'out']);
  const r = await personalizeOn(backbone);
  expect(r.manifest.phasesCompleted).toEqual(expect.arrayContaining(['phase1', 'phase2', 'sample']));
  expect(r.manifest.notes ?? []).toEqual([]);
  const teAdapters = r.concepts.adapterSpec.filter((s) => s.model === 'text_encoder');
  expect(teAdapters).toHaveLength(4);
  expect(teAdapters.some((s) => r.concepts.adapters.get(s.b)!.data.some((v) => v !== 0))).toBe(true); // phase 2 moved them
  expect(r.samples.length).toBeGreaterThan(0);
  for (const s of r.samples) expect(fs.existsSync(path.join(r.outDir, s.file))).toBe(true);
});

test('a token table with rows past the tokenizer: placeholders take ids from the tokenizer size on; both phases run', async () => {
  const backbone = bundleWith('padded', (m) => padTokenTable(m, findTokenEmbedding(m).name, 37, 4));
  const te = loadModel(loadBundle(backbone).textEncoderPath);
  expect(findTokenEmbedding(te, { baseVocabSize: vocabSize })).toMatchObject({ vocabSize, rows: vocabSize + 37 });
  const r = await personalizeOn(backbone);
  expect(r.manifest.phasesCompleted).toEqual(expect.arrayContaining(['phase1', 'phase2', 'sample']));
  expect(r.concepts.embeddings.dims).toEqual([2, findTokenEmbedding(te).dim]);
  expect(r.samples.length).toBeGreaterThan(0);
});

/** SD 2.1's structure (4 levels, DownBlock2D last, 3-resnet up blocks) at tiny widths and 128 px. */
const small = (preset: SdBundleConfig): SdBundleConfig => ({
  ...preset,
  sampleSize: 128,
  unet: { ...preset.unet, blockOutChannels: [32, 64, 64, 64], attentionHeads: [1, 2, 2, 2], normGroups: 8, timeEmbedDim: 128 },
  textEncoder: { ...preset.textEncoder, layers: 2, hiddenSize: 64, heads: 2, intermediateSize: 256 },
  vae: { ...preset.vae, blockOutChannels: [16, 32, 32, 32], layersPerBlock: 1, normGroups: 8 },
});

test.each([
  ['SD 2.1-base shaped, float16 (optimum --fp16)', 'sd21-base', 'fp16'],
  ['SD 2.1 shaped (v-prediction), float32', 'sd21', 'fp32'],
] as const)('%s: both phases run and samples are drawn', async (_, variant, dtype) => {
  const backbone = path.join(dir, `${variant}-${dtype}`);
  await createSdBundle(backbone, { config: small(SD21_PRESETS[variant]), dtype });
  const r = await personalizeOn(backbone);
  expect(r.manifest.phasesCompleted).toEqual(expect.arrayContaining(['phase1', 'phase2', 'sample']));
  expect(r.concepts.adapterSpec.some((s) => s.model === 'text_encoder')).toBe(true);
  expect(r.concepts.adapterSpec.some((s) => s.model === 'unet')).toBe(true);
  for (const v of r.concepts.embeddings.data as Float32Array) expect(Number.isFinite(v)).toBe(true);
  expect(r.samples.length).toBeGreaterThan(0);
});

test('a UNet exported with one float timestep for the whole batch (a 0-d input): both phases run', async () => {
  const backbone = path.join(dir, 'scalar-timestep');
  fs.cpSync(tinyDir, backbone, { recursive: true });
  // diffusers' forward: timesteps[None].expand(sample.shape[0]), the graph input a 0-d float
  const unet = loadModel(path.join(tinyDir, 'unet', 'model.onnx'));
  const g = unet.graph;
  const old = g.inputs.find((v) => v.name === 'timestep')!;
  for (const n of g.nodes) n.inputs = n.inputs.map((x) => (x === 'timestep' ? 'timestep_batched' : x));
  g.inputs = g.inputs.map((v) => (v === old ? { name: 'timestep', dtype: DataType.FLOAT, shape: [] } : v));
  const axes = g.addConstant('t_axes', fromNumbers(DataType.INT64, [1], [0]));
  const start = g.addConstant('t_start', fromNumbers(DataType.INT64, [1], [0]));
  const end = g.addConstant('t_end', fromNumbers(DataType.INT64, [1], [1]));
  g.addNode({ name: 't/Unsqueeze', opType: 'Unsqueeze', domain: '', inputs: ['timestep', axes], outputs: ['t_1'], attributes: [] });
  g.addNode({ name: 't/Cast', opType: 'Cast', domain: '', inputs: ['t_1'], outputs: ['t_int'], attributes: [{ name: 'to', type: 2, i: DataType.INT64 }] });
  g.addNode({ name: 't/Shape', opType: 'Shape', domain: '', inputs: ['sample'], outputs: ['t_shape'], attributes: [] });
  g.addNode({ name: 't/Slice', opType: 'Slice', domain: '', inputs: ['t_shape', start, end], outputs: ['t_batch'], attributes: [] });
  g.addNode({ name: 't/Expand', opType: 'Expand', domain: '', inputs: ['t_int', 't_batch'], outputs: ['timestep_batched'], attributes: [] });
  g.sortTopologically();
  saveModel(unet, path.join(backbone, 'unet', 'model.onnx'));
  const r = await personalizeOn(backbone);
  expect(r.manifest.phasesCompleted).toEqual(expect.arrayContaining(['phase1', 'phase2', 'sample']));
  expect(r.samples.length).toBeGreaterThan(0);
});
