/**
 * Whole personalizations (smoke preset: augmentation, GSA, both training phases, sampling with the learned
 * concepts) on bundles whose text encoder another exporter wrote (testing/foreign-text-encoders.ts, shaped
 * like the torch.onnx exports in packages/diffusion/fixtures/text_encoder_variants): a fused q/k/v input
 * projection with no projection names, and a token table padded past the tokenizer's vocabulary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle, findTokenEmbedding, loadBundle } from '@dynasyn/diffusion';
import { loadModel, saveModel, type OnnxModel } from '@dynasyn/ort-training';
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
    backbone, outDir: path.join(backbone, '..', `${path.basename(backbone)}-run`),
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
