/**
 * One row per pass (the trainer's rowsPerPass 1, the default for SD 2.1 at 768 px): a batch-1 training
 * graph run once per row, in the reference's part and then in the augmented image's, gives the loss, the
 * loss terms and every gradient of the batch-2 step on the same feeds; and a whole two-phase run trains the
 * same as one with both rows in one pass.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle, GaussianRng, loadBundle, PLACEHOLDER_INPUT, type ModelBundle } from '@dynasyn/diffusion';
import { flipHorizontal } from '@dynasyn/imaging';
import { TrainingSession, type HostTensor, type StepResult } from '@dynasyn/ort-training';
import { buildTrainingModel, type TrainingModel } from '../graph/index.js';
import { preset } from '../presets.js';
import { twoSubjectInput } from '../testing/two-subjects.js';
import type { AugmentedExample, TrainOptions } from '../types.js';
import { buildStepBatch, splitRows, type BatchSetup } from './batch.js';
import { attentionGrid, encodeLatents, placeholderTokenizer, trainingScheduler } from './setup.js';
import { defaultRowsPerPass, sessionSpec, trainPersonalization } from './trainer.js';

let dir: string;
let bundle: ModelBundle;
const input = twoSubjectInput();
const augmented: AugmentedExample[] = [
  {
    image: flipHorizontal(input.image),
    prompt: 'a photo of <asset1> next to <asset0>',
    classPrompt: '',
    nounPrompt: '',
    category: 'interaction',
    subjects: [0, 1],
    masks: input.subjects.map((s) => flipHorizontal(s.mask)),
  },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dynasyn-rows-'));
  createTinyBundle(join(dir, 'bundle'));
  bundle = loadBundle(join(dir, 'bundle'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const floats = (t: HostTensor): Float32Array => t.data as Float32Array;
const scalarOf = (r: StepResult, name: string) => floats(r.outputs.get(name)!)[0]!;

/** Largest |a - b| relative to the largest |b| (a gradient's scale). */
function relDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

async function sessionOf(built: TrainingModel): Promise<TrainingSession> {
  const s = await TrainingSession.create({ ...sessionSpec(built), cacheDir: join(dir, 'cache'), sessionOptions: { intraOpNumThreads: 1 } });
  for (const [name, value] of built.startValues) s.setTrainable(name, value);
  return s;
}

async function setupFor(built: TrainingModel, withAug: boolean): Promise<BatchSetup> {
  const { tokenizer } = placeholderTokenizer(bundle, 2);
  const latents = await encodeLatents(bundle, input, withAug ? augmented : [], {});
  const { inputIds, timestep, noisyLatents } = built.inputs;
  return {
    subjects: input.subjects,
    tokenizer,
    scheduler: trainingScheduler(bundle),
    grid: built.grid,
    slots: 2,
    maxTokens: bundle.maxTokens,
    ...latents,
    // every term weighted alike, so that both passes' shares of the gradient matter
    lambdas: { md: 1, m2a: 1, ica: 1, aug: 1 },
    flipProbability: 0.5,
    frozenInGraph: true,
    idsType: inputIds.dtype,
    timestepType: timestep.dtype,
    timestepDims: built.timestepPerRow ? [2] : timestep.dims,
    latentType: noisyLatents.dtype,
  };
}

describe('a batch-1 graph run once per row', () => {
  for (const phase of [1, 2] as const) {
    it(`gives the batch-2 step's loss, terms and gradients (phase ${phase}${phase === 2 ? ', LoRA adapters' : ''})`, async () => {
      const { tokenizer, baseVocabSize } = placeholderTokenizer(bundle, 2);
      const startTokenIds = input.subjects.map((s) => tokenizer.firstSubTokenId(s.classWord));
      const grid = attentionGrid(bundle, 4);
      const common = { numPlaceholders: 2, baseVocabSize, phase, grid, placeholderTokenIds: startTokenIds, seed: 3 };
      const two = buildTrainingModel(bundle, { ...common, batch: 2 });
      const one = buildTrainingModel(bundle, { ...common, batch: 1 });
      expect(one.inputs.noisyLatents.dims[0]).toBe(1);
      expect(one.trainable).toEqual(two.trainable);
      const [s2, s1] = [await sessionOf(two), await sessionOf(one)];
      try {
        // LoRA's B starts at zero, where the A gradients vanish: start from values that exercise both
        for (const name of two.trainable) {
          const v = two.startValues.get(name)!;
          const moved = { ...v, data: Float32Array.from(floats(v), (x, i) => x + 0.05 * Math.sin(i + name.length)) };
          s2.setTrainable(name, moved);
          s1.setTrainable(name, moved);
        }
        const setup = await setupFor(two, true);
        const batch = await buildStepBatch(setup, new GaussianRng(11).fork('step'), 0);
        expect(batch.augIndex).toBe(0);
        const whole = await s2.step(batch.feeds);
        const passes = splitRows(batch.feeds);
        expect(passes).toHaveLength(2);
        const parts: StepResult[] = [];
        for (const feeds of passes) {
          const r = await s1.step(feeds);
          parts.push({ loss: r.loss, grads: new Map([...r.grads].map(([k, g]) => [k, { ...g, data: floats(g).slice() }])), outputs: r.outputs });
        }
        const O = two.outputs;
        // the reference's terms come from pass 0 alone, L_AUG from pass 1 alone
        expect(scalarOf(parts[1]!, O.md)).toBe(0);
        expect(scalarOf(parts[1]!, O.m2a)).toBe(0);
        expect(scalarOf(parts[1]!, O.ica)).toBe(0);
        expect(scalarOf(parts[0]!, O.aug)).toBe(0);
        for (const name of [O.md, O.m2a, O.ica]) expect(scalarOf(parts[0]!, name)).toBeCloseTo(scalarOf(whole, name), 5);
        expect(scalarOf(parts[1]!, O.aug)).toBeCloseTo(scalarOf(whole, O.aug), 5);
        expect(scalarOf(whole, O.aug)).toBeGreaterThan(0);
        expect(parts[0]!.loss + parts[1]!.loss).toBeCloseTo(whole.loss, 5);
        // the reference row's maps are the same tensor either way
        expect(
          relDiff(
            floats(parts[0]!.outputs.get(O.attention)!),
            floats(whole.outputs.get(O.attention)!).subarray(0, floats(parts[0]!.outputs.get(O.attention)!).length),
          ),
        ).toBeLessThan(1e-5);
        for (const name of two.trainable) {
          const sum = Float32Array.from(floats(parts[0]!.grads.get(name)!), (g, i) => g + floats(parts[1]!.grads.get(name)!)[i]!);
          const want = floats(whole.grads.get(name)!);
          expect(want.some((g) => g !== 0)).toBe(true);
          expect(relDiff(sum, want)).toBeLessThan(2e-4);
        }
        // each part carries its own share: the placeholder rows take gradient from both rows (adapters after
        // the captured layers take none from L_AUG, which reads only the maps)
        const rows = floats(whole.grads.get(PLACEHOLDER_INPUT)!);
        expect(relDiff(floats(parts[0]!.grads.get(PLACEHOLDER_INPUT)!), rows)).toBeGreaterThan(1e-3);
        expect(relDiff(floats(parts[1]!.grads.get(PLACEHOLDER_INPUT)!), rows)).toBeGreaterThan(1e-3);
      } finally {
        await s2.release();
        await s1.release();
      }
    }, 120_000);
  }

  it('is a single pass when there is no augmented row to train', async () => {
    const { baseVocabSize } = placeholderTokenizer(bundle, 2);
    const two = buildTrainingModel(bundle, { numPlaceholders: 2, baseVocabSize, phase: 1, grid: attentionGrid(bundle, 4), batch: 2 });
    const setup = await setupFor(two, false);
    const batch = await buildStepBatch(setup, new GaussianRng(5).fork('step'), undefined);
    const passes = splitRows(batch.feeds);
    expect(passes).toHaveLength(1);
    expect(passes[0]!.noisy_latents!.dims[0]).toBe(1);
    expect(Array.from(floats(passes[0]!.noisy_latents!))).toEqual(
      Array.from(floats(batch.feeds.noisy_latents!).subarray(0, floats(passes[0]!.noisy_latents!).length)),
    );
  });
});

describe('the trainer with one row per pass', () => {
  it('trains both phases as it does with both rows in one pass (same losses step by step, same concepts)', async () => {
    const options: TrainOptions = { ...preset('tiny').train, phase1: { steps: 3, lr: 5e-3 }, phase2: { steps: 2, lr: 1e-3 }, checkpointEvery: 0 };
    const run = (rowsPerPass: 1 | 2) =>
      trainPersonalization({ bundle, input, augmented, options, seed: 7, cacheDir: join(dir, 'cache'), intraOpNumThreads: 1, rowsPerPass });
    const a = await run(1);
    const b = await run(2);
    expect(a.metrics).toHaveLength(5);
    a.metrics.forEach((m, i) => {
      const w = b.metrics[i]!;
      for (const k of ['md', 'm2a', 'ica', 'aug', 'total'] as const) expect(Math.abs(m[k] - w[k])).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(w[k]), 1e-6));
    });
    expect(relDiff(floats(a.concepts.embeddings), floats(b.concepts.embeddings))).toBeLessThan(1e-4);
    expect([...a.concepts.adapters.keys()]).toEqual([...b.concepts.adapters.keys()]);
    expect(a.concepts.adapters.size).toBeGreaterThan(0);
  }, 240_000);

  it('is the default from 96x96 latents (SD 2.1 at 768 px) up, not below', () => {
    expect(defaultRowsPerPass({ sampleSize: 768, vaeScaleFactor: 8 })).toBe(1);
    expect(defaultRowsPerPass({ sampleSize: 512, vaeScaleFactor: 8 })).toBe(2);
    expect(defaultRowsPerPass(bundle)).toBe(2);
  });
});
