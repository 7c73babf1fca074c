/**
 * The two-phase trainer on the tiny bundle: phase 1 lowers the attention losses and moves the placeholder
 * maps toward their masks; a cancelled and resumed run equals an uninterrupted one bit for bit; the class
 * maps come from the frozen original model whatever the trainable values.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyBundle, GaussianRng, loadBundle, PLACEHOLDER_INPUT, type ModelBundle } from '@dynasyn/diffusion';
import { flipHorizontal } from '@dynasyn/imaging';
import { fromNumbers, TrainingSession, type HostTensor } from '@dynasyn/ort-training';
import { buildTrainingModel } from '../graph/index.js';
import { preset } from '../presets.js';
import { twoSubjectBatchSetup, twoSubjectInput } from '../testing/two-subjects.js';
import type { AugmentedExample, TrainOptions } from '../types.js';
import { buildBatch, drawStep } from './batch.js';
import { isTrainingError } from './errors.js';
import { attentionGrid, frozenClassModel, placeholderTokenizer } from './setup.js';
import { trainPersonalization, type TrainMetricsRow, type TrainResult } from './trainer.js';
import { drawUnion } from './union.js';

let dir: string;
let bundle: ModelBundle;
const input = twoSubjectInput();
const augmented: AugmentedExample[] = [
  { prompt: 'a photo of <asset1> next to <asset0>', subjects: [0, 1], flip: true },
  { prompt: 'a photo of <asset0> on the grass', subjects: [0], flip: false },
].map(({ prompt, subjects, flip }) => ({
  image: flip ? flipHorizontal(input.image) : input.image,
  prompt,
  classPrompt: '',
  nounPrompt: '',
  category: 'plain',
  subjects,
  masks: subjects.map((j) => (flip ? flipHorizontal(input.subjects[j]!.mask) : input.subjects[j]!.mask)),
}));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dynasyn-trainer-'));
  createTinyBundle(join(dir, 'bundle'));
  bundle = loadBundle(join(dir, 'bundle'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = () => ({ bundle, input, cacheDir: join(dir, 'cache'), intraOpNumThreads: 1 });
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('phase 1', () => {
  it('lowers L_M2A and L_ICA and moves the placeholder maps toward their masks (fixed seed)', async () => {
    // On the random tiny backbone L_MD's gradient (lambda 1) swamps the attention terms' (1e-2, 5e-3) in the
    // placeholder rows, and z0 (rms 0.1) is mostly hidden by the noise: the paper's lambdas at lr 5e-3
    // move L_M2A/L_ICA by less than their step-to-step spread in 60 steps. This test asks whether the
    // trainer optimises the attention terms (draws, token selection, targets, gradients, AdamW), so it
    // weights them like L_MD and uses a larger lr.
    const options: TrainOptions = {
      ...preset('tiny').train,
      phase1: { steps: 48, lr: 5e-2 },
      phase2: { steps: 0, lr: 1e-3 },
      lambdas: { md: 1, m2a: 1, ica: 1, aug: 0 },
      checkpointEvery: 0,
    };
    const seed = 1;
    const r = await trainPersonalization({ ...common(), options, seed });
    expect(r.metrics).toHaveLength(48);
    expect(r.concepts.tokens).toEqual(['<asset0>', '<asset1>']);
    expect(r.concepts.adapters.size).toBe(0);

    // per-subject loss (a step's L_M2A sums over its k subjects), averaged over the first and last quarter
    const root = new GaussianRng(seed);
    const perSubject = r.metrics.map((m) => {
      const k = drawUnion(2, root.fork(`step-1-${m.step}`).fork('union'), options.flipProbability).subjects.length;
      return { m2a: m.m2a / k, ica: m.ica / k };
    });
    const first = perSubject.slice(0, 12),
      last = perSubject.slice(-12);
    const smoothed = {
      m2a: [mean(first.map((x) => x.m2a)), mean(last.map((x) => x.m2a))],
      ica: [mean(first.map((x) => x.ica)), mean(last.map((x) => x.ica))],
    };
    const { before, after } = r.alignment;
    console.log(
      [
        'phase 1 on the tiny bundle (48 steps, lr 5e-2, lambdas md/m2a/ica = 1/1/1, seed 1)',
        `  smoothed per-subject L_M2A first/last 12 steps: ${smoothed.m2a.map((v) => v.toFixed(4)).join(' -> ')}`,
        `  smoothed per-subject L_ICA first/last 12 steps: ${smoothed.ica.map((v) => v.toFixed(4)).join(' -> ')}`,
        `  evaluation batch (t = ${r.alignment.timestep}, fixed noise): L_M2A ${before.losses.m2a.toFixed(4)} -> ${after.losses.m2a.toFixed(4)}, L_ICA ${before.losses.ica.toFixed(4)} -> ${after.losses.ica.toFixed(4)}, L_MD ${before.losses.md.toFixed(4)} -> ${after.losses.md.toFixed(4)}`,
        ...before.placeholders.map((b, i) => {
          const a = after.placeholders[i]!;
          return `  ${b.token}: mse(A/max A, M) ${b.mse.toFixed(4)} -> ${a.mse.toFixed(4)}, IoU@0.5 ${b.iou.toFixed(3)} -> ${a.iou.toFixed(3)}, mass inside mask ${b.inside.toFixed(3)} -> ${a.inside.toFixed(3)}`;
        }),
      ].join('\n'),
    );

    expect(smoothed.m2a[1]!).toBeLessThan(0.9 * smoothed.m2a[0]!);
    expect(smoothed.ica[1]!).toBeLessThan(0.9 * smoothed.ica[0]!);
    expect(after.losses.m2a).toBeLessThan(0.8 * before.losses.m2a);
    expect(after.losses.ica).toBeLessThan(0.8 * before.losses.ica);
    for (const [i, b] of before.placeholders.entries()) {
      expect(after.placeholders[i]!.mse).toBeLessThan(b.mse);
      expect(b.map).toHaveLength(64);
    }
    expect(before.afterSteps).toBe(0);
    expect(after.afterSteps).toBe(48);
  });
});

describe('checkpoints', () => {
  const options: TrainOptions = {
    ...preset('tiny').train,
    phase1: { steps: 4, lr: 5e-3 },
    phase2: { steps: 4, lr: 1e-3 },
    checkpointEvery: 2,
  };
  const strip = (rows: TrainMetricsRow[]) => rows.map(({ ms: _ms, ...rest }) => rest);
  const bits = (t: HostTensor) => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  let uninterrupted: TrainResult;

  it('a run cancelled in phase 1 and again in phase 2, then resumed, equals an uninterrupted run bit for bit', async () => {
    uninterrupted = await trainPersonalization({ ...common(), augmented, options, seed: 3, checkpointDir: join(dir, 'ckpt-a') });
    expect(uninterrupted.metrics.map((m) => `${m.phase}.${m.step}`)).toEqual(['1.1', '1.2', '1.3', '1.4', '2.1', '2.2', '2.3', '2.4']);
    expect(uninterrupted.metrics.every((m) => m.aug > 0)).toBe(true);
    expect(uninterrupted.concepts.adapters.size).toBeGreaterThan(0);

    const ckpt = join(dir, 'ckpt-b');
    const cancelAt = async (phase: 1 | 2, step: number) => {
      const controller = new AbortController();
      const seen: string[] = [];
      const err = await trainPersonalization({
        ...common(),
        augmented,
        options,
        seed: 3,
        checkpointDir: ckpt,
        signal: controller.signal,
        onProgress: (e) => {
          seen.push(`${e.phase}.${e.step}`);
          if (e.phase === phase && e.step === step) controller.abort();
        },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTrainingError(err, 'CANCELLED')).toBe(true);
      // the step in flight when the signal fired was the last one
      expect(seen[seen.length - 1]).toBe(`${phase}.${step}`);
      expect((err as { state: unknown }).state).toEqual({ phase, step, checkpoint: join(ckpt, 'checkpoint.safetensors') });
      return seen;
    };
    expect(await cancelAt(1, 3)).toEqual(['1.1', '1.2', '1.3']);
    expect(await cancelAt(2, 1)).toEqual(['1.4', '2.1']);
    const resumed = await trainPersonalization({ ...common(), augmented, options, seed: 3, checkpointDir: ckpt });
    expect(resumed.resumedFrom).toEqual({ phase: 2, step: 1 });

    expect(strip(resumed.metrics)).toEqual(strip(uninterrupted.metrics));
    expect(bits(resumed.concepts.embeddings)).toEqual(bits(uninterrupted.concepts.embeddings));
    expect([...resumed.concepts.adapters.keys()]).toEqual([...uninterrupted.concepts.adapters.keys()]);
    for (const [name, t] of uninterrupted.concepts.adapters) expect(bits(resumed.concepts.adapters.get(name)!)).toEqual(bits(t));
    for (const [i, p] of uninterrupted.alignment.after.placeholders.entries()) {
      expect(Array.from(resumed.alignment.after.placeholders[i]!.map)).toEqual(Array.from(p.map));
      expect(Array.from(resumed.alignment.before.placeholders[i]!.map)).toEqual(Array.from(uninterrupted.alignment.before.placeholders[i]!.map));
    }
  });

  it('refuses a checkpoint of another run', async () => {
    const err = await trainPersonalization({ ...common(), augmented, options, seed: 4, checkpointDir: join(dir, 'ckpt-a') }).catch((e: unknown) => e);
    expect(isTrainingError(err, 'BAD_CHECKPOINT')).toBe(true);
    expect((err as Error).message).toMatch(/another run/);
  });
});

describe('frozen class maps', () => {
  it("are the original model's maps and do not change with the trainable values", async () => {
    const grid = attentionGrid(bundle, 4);
    const { tokenizer, baseVocabSize } = placeholderTokenizer(bundle, 2);
    const built = buildTrainingModel(bundle, {
      numPlaceholders: 2,
      maxSubjects: 2,
      baseVocabSize,
      phase: 2,
      adapters: preset('tiny').train.adapters,
      grid,
      icaNormalizeBoth: true,
      batch: 2,
      placeholderTokenIds: input.subjects.map((s) => tokenizer.firstSubTokenId(s.classWord)),
      frozenInGraph: false,
    });
    const O = built.outputs;
    // same keepOutputs as the trainer: the derived graph comes from the cache
    const session = await TrainingSession.create({
      model: built.model,
      loss: O.loss,
      trainable: built.trainable,
      keepOutputs: [O.md, O.m2a, O.ica, O.aug, O.attention],
      cacheDir: join(dir, 'cache'),
      sessionOptions: { intraOpNumThreads: 1 },
    });
    const frozen = await frozenClassModel(bundle, grid, {}, join(dir, 'cache'));
    try {
      for (const [name, v] of built.startValues) session.setTrainable(name, v);
      const setup = await twoSubjectBatchSetup(bundle, input, tokenizer, {
        grid,
        frozenInGraph: false,
        idsType: built.inputs.inputIds.dtype,
        timestepType: built.inputs.timestep.dtype,
        latentType: built.inputs.noisyLatents.dtype,
      });
      const draw = drawStep(setup, new GaussianRng(12).fork('step-1-1'), undefined);
      const before = await buildBatch(setup, draw, frozen.run);

      // The training graph fed the CLASS prompt (no placeholder ids), with identity adapters (LoRA B = 0),
      // selecting the class words: its maps are the frozen model's maps
      const classFeeds = { ...before.feeds };
      const ids = Array.from(before.reference.classIds);
      classFeeds.input_ids = fromNumbers(built.inputs.inputIds.dtype, [2, 77], [...ids, ...ids]);
      const select = new Float32Array(2 * 77 * 2);
      for (const j of draw.union.subjects) select[before.reference.classWordAt.get(j)! * 2 + j] = 1;
      classFeeds.token_select = { ...before.feeds.token_select!, data: select };
      const viaTraining = (await session.step(classFeeds)).outputs.get(O.attention)!.data as Float32Array;
      const classIds = new Int32Array([...ids, ...ids]);
      const maps = await frozen.run(classIds, before.feeds.noisy_latents!.data as Float32Array, before.timesteps);
      for (const j of draw.union.subjects) {
        for (let p = 0; p < 64; p++) expect(viaTraining[p * 2 + j]).toBeCloseTo(maps[p * 77 + before.reference.classWordAt.get(j)!]!, 5);
      }

      // new trainable values (random placeholder rows, non-zero adapters) change the training graph's maps ...
      const rng = new GaussianRng(99);
      for (const name of built.trainable) {
        const t = session.getTrainable(name);
        session.setTrainable(name, { ...t, data: (t.data as Float32Array).map((v) => v + 0.5 * rng.normal()) });
      }
      const moved = (await session.step(classFeeds)).outputs.get(O.attention)!.data as Float32Array;
      expect(Math.max(...moved.map((v, i) => Math.abs(v - viaTraining[i]!)))).toBeGreaterThan(1e-4);
      expect(session.getTrainable(PLACEHOLDER_INPUT).dims).toEqual([2, 64]);
      // ... but not the class-prompt targets of the same draw
      const after = await buildBatch(setup, draw, frozen.run);
      for (const name of ['ica_target', 'aug_target', 'm2a_target'] as const) {
        expect(Array.from(after.feeds[name]!.data as Float32Array)).toEqual(Array.from(before.feeds[name]!.data as Float32Array));
      }
    } finally {
      await session.release();
      await frozen.release();
    }
  });
});

describe('the frozen branch of the training graph', () => {
  it('gives the targets the separate frozen model gives, whatever the trainable values (phase 1 and phase 2 with non-zero adapters)', async () => {
    const grid = attentionGrid(bundle, 4);
    const { tokenizer, baseVocabSize } = placeholderTokenizer(bundle, 2);
    const frozen = await frozenClassModel(bundle, grid, {}, join(dir, 'cache'));
    try {
      for (const phase of [1, 2] as const) {
        const build = (frozenInGraph: boolean) =>
          buildTrainingModel(bundle, {
            numPlaceholders: 2,
            maxSubjects: 2,
            baseVocabSize,
            phase,
            adapters: preset('tiny').train.adapters,
            grid,
            icaNormalizeBoth: true,
            batch: 2,
            placeholderTokenIds: input.subjects.map((s) => tokenizer.firstSubTokenId(s.classWord)),
            frozenInGraph,
            seed: 5,
          });
        const [fed, inGraph] = [build(false), build(true)];
        expect(inGraph.inputs.classSelect).toBeDefined();
        expect(inGraph.inputs.icaTarget).toBeUndefined();
        // the frozen branch reads the live branch's weights: no initializer is held twice
        const weights = [...inGraph.model.graph.initializers.values()].filter((i) => i.dims.length === 2 && i.dims.every((d) => d > 8));
        expect(weights.length).toBeGreaterThan(0);
        expect(weights.filter((i) => i.name.startsWith('frozen/'))).toEqual([]);
        const O = fed.outputs;
        const open = (b: typeof fed) =>
          TrainingSession.create({
            model: b.model,
            loss: O.loss,
            trainable: b.trainable,
            keepOutputs: [O.md, O.m2a, O.ica, O.aug],
            cacheDir: join(dir, 'cache'),
            sessionOptions: { intraOpNumThreads: 1 },
          });
        const [sFed, sGraph] = [await open(fed), await open(inGraph)];
        try {
          // the same random trainable values in both (placeholder rows, and adapters with B != 0 in phase 2)
          const rng = new GaussianRng(40 + phase);
          for (const [name, v] of fed.startValues) {
            const moved = { ...v, data: (v.data as Float32Array).map((x) => x + 0.3 * rng.normal()) };
            sFed.setTrainable(name, moved);
            sGraph.setTrainable(name, moved);
          }
          const base = await twoSubjectBatchSetup(
            bundle,
            input,
            tokenizer,
            {
              grid,
              lambdas: { md: 1, m2a: 1, ica: 1, aug: 1 },
              frozenInGraph: false,
              idsType: fed.inputs.inputIds.dtype,
              timestepType: fed.inputs.timestep.dtype,
              latentType: fed.inputs.noisyLatents.dtype,
            },
            augmented,
          );
          for (const [i, augIndex] of [
            [1, 0],
            [2, 1],
          ] as const) {
            const draw = drawStep({ ...base, frozenInGraph: false }, new GaussianRng(70 + i).fork(`step-${phase}-${i}`), augIndex);
            const a = await sFed.step((await buildBatch({ ...base, frozenInGraph: false }, draw, frozen.run)).feeds);
            const b = await sGraph.step((await buildBatch({ ...base, frozenInGraph: true }, draw)).feeds);
            const term = (r: typeof a, name: string) => Number((r.outputs.get(name)!.data as Float32Array)[0]);
            for (const name of [O.md, O.m2a, O.ica, O.aug]) {
              const [x, y] = [term(a, name), term(b, name)];
              expect(Math.abs(x - y)).toBeLessThanOrEqual(1e-5 * Math.max(1e-3, Math.abs(x)));
            }
            expect(term(a, O.ica)).toBeGreaterThan(0);
            expect(term(a, O.aug)).toBeGreaterThan(0);
            for (const [name, g] of a.grads) {
              const h = b.grads.get(name)!.data as Float32Array;
              const scale = Math.max(1e-6, ...Array.from(g.data as Float32Array, Math.abs));
              expect(Math.max(...Array.from(g.data as Float32Array, (v, k) => Math.abs(v - h[k]!))) / scale).toBeLessThan(1e-4);
            }
          }
        } finally {
          await sFed.release();
          await sGraph.release();
        }
      }
    } finally {
      await frozen.release();
    }
  });
});

describe('failures', () => {
  const steps = (phase1: number, phase2: number): TrainOptions => ({
    ...preset('tiny').train,
    phase1: { steps: phase1, lr: 1e-3 },
    phase2: { steps: phase2, lr: 1e-3 },
    checkpointEvery: 0,
  });

  it('a phase 2 that cannot be built fails before the first training step', async () => {
    const options: TrainOptions = { ...steps(3, 2), adapters: { mode: 'full', rank: 4, targets: ['unet'], fullTensors: ['no_such_weight'] } };
    const seen: number[] = [];
    await expect(
      trainPersonalization({
        ...common(),
        options,
        seed: 3,
        onProgress: (e) => {
          if (e.stage === 'train') seen.push(e.step);
        },
      }),
    ).rejects.toThrow(/full-mode tensor no_such_weight matches no weight/);
    expect(seen).toEqual([]);
  });

  it('a failure while opening phase 2 reports its own error, not a failed release of phase 1', async () => {
    const cacheDir = mkdtempSync(join(dir, 'cache-corrupt-'));
    // Phase 1 holds its session open; at its last step every cached training graph on disk is overwritten, so
    // only phase 2's onnxruntime load (which reads the file) fails.
    const corrupt = () => {
      for (const entry of readdirSync(cacheDir)) {
        const file = join(cacheDir, entry, 'model.onnx');
        if (existsSync(join(cacheDir, entry, 'meta.json'))) writeFileSync(file, 'not a model');
      }
    };
    let error: unknown;
    try {
      await trainPersonalization({
        ...common(),
        cacheDir,
        options: steps(2, 2),
        seed: 4,
        onProgress: (e) => {
          if (e.stage === 'train' && e.phase === 1 && e.step === 2) corrupt();
        },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).not.toMatch(/disposed|released/i);
    expect((error as Error).message).toMatch(/protobuf|parse|load|model/i);
    expect((error as { suppressed?: unknown[] }).suppressed ?? []).toEqual([]); // nothing released twice
  });
});
