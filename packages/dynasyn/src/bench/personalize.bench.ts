/**
 * `npm run bench -w packages/dynasyn`: costs of the tiny preset on the tiny bundle (issue 4 "Benchmark").
 * - a training step and its split, per phase: batch preparation (the frozen class-prompt pass A(c_hat) is a
 *   branch of the training graph, so it is inside forward + backward),
 *   forward + backward (TrainingSession.step), the optimizer update; the forward share from a forward-only
 *   run of the same training graph (loss only), backward = step - forward; and standalone text encoder and
 *   UNet forwards at the training batch (2 rows) for the split of the forward;
 * - augmentation per image (draft, composition, GSA) from augment()'s own progress events, and GSA alone;
 * - a sample (tiny preset: 6 DDIM steps with guidance) with learned placeholders and merged adapters;
 * - peak memory (process.resourceUsage().maxRSS).
 * Medians over repeats after a warm-up. Flags: --threads N (onnxruntime intra-op threads, default the
 * preset's 2), --steps N (timed training steps per phase, default 8), --json FILE.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createTinyBundle, DiffusionPipeline, GaussianRng, loadBundle, PLACEHOLDER_INPUT, ClipTextEncoder, Unet, type ModelBundle } from '@dynasyn/diffusion';
import { AdamW, serializeModel, TrainingSession, type HostTensor } from '@dynasyn/ort-training';
import { augment } from '../augment/augment.js';
import { guidedSdeAugmentation } from '../augment/gsa.js';
import { createExampleInput } from '../example/example-input.js';
import { buildTrainingModel } from '../graph/index.js';
import { readInputFiles } from '../inputs.js';
import { resolveOptions } from '../presets.js';
import { createPersonalizedPipeline, defaultSamplePrompts, sampleConcepts } from '../sample.js';
import { buildStepBatch, type BatchSetup } from '../train/batch.js';
import { attentionGrid, encodeLatents, placeholderTokenizer, trainingScheduler } from '../train/setup.js';
import type { AugmentedExample, DynasynOptions, LearnedConcepts, PersonalizationInput, ProgressEvent } from '../types.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (v: number) => `${v.toFixed(1)} ms`;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

const ORT_TYPE: Record<number, ort.Tensor.Type> = { 1: 'float32', 6: 'int32', 7: 'int64', 11: 'float64', 10: 'float16' };
const toOrt = (t: HostTensor): ort.Tensor => new ort.Tensor(ORT_TYPE[t.dtype]!, t.data as Float32Array, t.dims);

interface PhaseNumbers {
  stepMs: number;
  batchMs: number;
  forwardBackwardMs: number;
  forwardOnlyMs: number;
  backwardMs: number;
  optimizerMs: number;
  trainables: number;
}

async function benchPhase(
  phase: 1 | 2,
  bundle: ModelBundle,
  setupBase: Omit<BatchSetup, 'idsType' | 'timestepType' | 'latentType' | 'frozenInGraph'>,
  o: DynasynOptions,
  n: number,
): Promise<{ numbers: PhaseNumbers; concepts?: LearnedConcepts; feeds: Record<string, HostTensor> }> {
  const N = setupBase.subjects.length;
  const { tokenizer } = setupBase;
  const built = buildTrainingModel(bundle, {
    numPlaceholders: N,
    maxSubjects: N,
    baseVocabSize: tokenizer.vocabSize,
    phase,
    adapters: o.train.adapters,
    grid: setupBase.grid,
    icaNormalizeBoth: o.train.icaNormalizeBoth,
    batch: 2,
    placeholderTokenIds: setupBase.subjects.map((s) => tokenizer.firstSubTokenId(s.classWord)),
    seed: o.seed,
  });
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-bench-graphs-'));
  const session = await TrainingSession.create({
    model: built.model,
    loss: built.outputs.loss,
    trainable: built.trainable,
    cacheDir,
    keepOutputs: [built.outputs.md, built.outputs.m2a, built.outputs.ica, built.outputs.aug],
    ...(o.intraOpNumThreads !== undefined ? { sessionOptions: { intraOpNumThreads: o.intraOpNumThreads } } : {}),
  });
  for (const [name, value] of built.startValues) session.setTrainable(name, value);
  const forward = await ort.InferenceSession.create(serializeModel(built.model), {
    graphOptimizationLevel: 'all',
    ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
  });
  const setup: BatchSetup = {
    ...setupBase,
    frozenInGraph: built.inputs.classSelect !== undefined,
    idsType: built.inputs.inputIds.dtype,
    timestepType: built.inputs.timestep.dtype,
    latentType: built.inputs.noisyLatents.dtype,
  };
  const optimizer = new AdamW({ lr: (phase === 1 ? o.train.phase1 : o.train.phase2).lr, weightDecay: o.train.weightDecay, maxGradNorm: o.train.maxGradNorm });
  const root = new GaussianRng(o.seed);
  const rows: { step: number; batch: number; fb: number; fwd: number; opt: number }[] = [];
  let feeds: Record<string, HostTensor> = {};
  for (let i = 0; i <= n; i++) {
    const t0 = performance.now();
    const [batch, batchMs] = await timed(() =>
      buildStepBatch(setup, root.fork(`bench-${phase}-${i}`), setupBase.augmented.length ? i % setupBase.augmented.length : undefined),
    );
    const [r, fb] = await timed(() => session.step(batch.feeds));
    const [, opt] = await timed(async () => session.applyGradients(optimizer, r.grads));
    const step = performance.now() - t0;
    feeds = batch.feeds;
    const fwdFeeds: Record<string, ort.Tensor> = {};
    for (const name of forward.inputNames) fwdFeeds[name] = toOrt(batch.feeds[name] ?? session.getTrainable(name));
    const [, fwd] = await timed(() => forward.run(fwdFeeds, [built.outputs.loss]));
    if (i > 0) rows.push({ step, batch: batchMs, fb, fwd, opt }); // i = 0 warms up
  }
  const concepts: LearnedConcepts | undefined =
    phase === 2
      ? {
          tokens: setupBase.subjects.map((_, i) => `<asset${i}>`),
          classWords: setupBase.subjects.map((s) => s.classWord),
          embeddings: session.getTrainable(PLACEHOLDER_INPUT),
          adapters: new Map(session.trainableNames.filter((t) => t !== PLACEHOLDER_INPUT).map((t) => [t, session.getTrainable(t)])),
          adapterSpec: [...built.adapters],
        }
      : undefined;
  const trainables = session.trainableNames.reduce((acc, name) => acc + session.getTrainable(name).data.length, 0);
  await session.release();
  await forward.release();
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const fwd = median(rows.map((r) => r.fwd)),
    fbm = median(rows.map((r) => r.fb));
  return {
    numbers: {
      stepMs: median(rows.map((r) => r.step)),
      batchMs: median(rows.map((r) => r.batch)),
      forwardBackwardMs: fbm,
      forwardOnlyMs: fwd,
      backwardMs: fbm - fwd,
      optimizerMs: median(rows.map((r) => r.opt)),
      trainables,
    },
    ...(concepts ? { concepts } : {}),
    feeds,
  };
}

/** Standalone text encoder (with placeholders) and UNet (with attention capture) forwards at batch 2: the forward's split. */
async function benchForwardParts(
  bundle: ModelBundle,
  o: DynasynOptions,
  N: number,
  feeds: Record<string, HostTensor>,
  grid: [number, number],
  n: number,
): Promise<{ textEncoderMs: number; unetMs: number }> {
  const runtime = o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {};
  const { baseVocabSize } = placeholderTokenizer(bundle, N);
  const text = await ClipTextEncoder.create(bundle, { ...runtime, placeholders: N, baseVocabSize });
  const unet = await Unet.create(bundle, { ...runtime, captureAttention: { grid } });
  const ids = feeds['input_ids'] ?? Object.values(feeds).find((t) => t.dims.length === 2 && t.dims[1] === bundle.maxTokens)!;
  const rows = [0, 1].map((r) =>
    Array.from(ids.data as ArrayLike<number | bigint>)
      .slice(r * bundle.maxTokens, (r + 1) * bundle.maxTokens)
      .map(Number),
  );
  const emb = new Float32Array(N * bundle.textEmbedDim);
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  const latents = { dims: [2, bundle.latentChannels, side, side], data: new GaussianRng(1).fill(2 * bundle.latentChannels * side * side) };
  const te: number[] = [],
    un: number[] = [];
  for (let i = 0; i <= n; i++) {
    const [hidden, a] = await timed(() => text.encode(rows, emb));
    const [, b] = await timed(() => unet.predict(latents, [500, 500], hidden));
    if (i > 0) {
      te.push(a);
      un.push(b);
    }
  }
  await text.release();
  await unet.release();
  return { textEncoderMs: median(te), unetMs: median(un) };
}

async function main(): Promise<void> {
  const threads = arg('threads') ? Number(arg('threads')) : undefined;
  const steps = Number(arg('steps') ?? 8);
  const o = resolveOptions('tiny', threads ? { intraOpNumThreads: threads } : {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-bench-'));
  try {
    await createTinyBundle(path.join(dir, 'tiny'));
    const bundle = loadBundle(path.join(dir, 'tiny'));
    const files = await createExampleInput(path.join(dir, 'example'));
    const input: PersonalizationInput = await readInputFiles(files, bundle.sampleSize);
    const runtime = o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {};

    // augmentation, timed per image from its own progress events
    const base = await DiffusionPipeline.create(bundle, runtime);
    const events: { e: ProgressEvent; t: number }[] = [];
    const [augmented, augmentMs] = await timed(() =>
      augment(input, base, o.augmentation, { seed: o.seed, runtime, onProgress: (e) => events.push({ e, t: performance.now() }) }),
    );
    const gaps = (pred: (e: ProgressEvent) => boolean) => {
      const out: number[] = [];
      for (let i = 1; i < events.length; i++) if (pred(events[i]!.e)) out.push(events[i]!.t - events[i - 1]!.t);
      return out;
    };
    const draftMs = median(gaps((e) => e.stage === 'augment' && /^draft/.test(e.message ?? '')));
    const composeMs = median(gaps((e) => e.stage === 'augment' && /^compose/.test(e.message ?? '')));
    const gsaInRunMs = median(gaps((e) => e.stage === 'gsa'));
    const gsaAlone: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [, t] = await timed(() =>
        guidedSdeAugmentation(base, augmented[0]!.image, augmented[0]!.nounPrompt, {
          strength: o.augmentation.gsaStrength,
          schedule: 'fast',
          steps: o.augmentation.gsaSteps,
          guidance: o.augmentation.draftGuidance,
          seed: i,
        }),
      );
      if (i > 0) gsaAlone.push(t);
    }
    // one guided UNet step of the base pipeline, to extrapolate the GSA schedules of fast (50) and paper (1000 x 0.7)
    const [, oneStep] = await timed(() => base.textToImage({ prompt: 'a photo of a ball', steps: 1, guidance: 7.5, seed: 0 }));
    const [, tenSteps] = await timed(() => base.textToImage({ prompt: 'a photo of a ball', steps: 11, guidance: 7.5, seed: 0 }));
    const perGuidedStep = (tenSteps - oneStep) / 10;
    await base.release();

    // training
    const N = input.subjects.length;
    const { tokenizer } = placeholderTokenizer(bundle, N);
    const grid = attentionGrid(bundle, o.train.attentionGridDivisor);
    const latents = await encodeLatents(bundle, input, augmented as AugmentedExample[], runtime);
    const setupBase = {
      subjects: input.subjects,
      tokenizer,
      scheduler: trainingScheduler(bundle),
      grid,
      slots: N,
      maxTokens: bundle.maxTokens,
      ...latents,
      lambdas: o.train.lambdas,
      flipProbability: o.train.flipProbability,
    };
    const p1 = await benchPhase(1, bundle, setupBase, o, steps);
    const p2 = await benchPhase(2, bundle, setupBase, o, steps);
    const parts = await benchForwardParts(bundle, o, N, p1.feeds, grid, steps);

    // sampling with the phase-2 concepts
    const pipeline = await createPersonalizedPipeline(bundle, p2.concepts!, { ...runtime, cacheDir: path.join(dir, 'cache') });
    const prompts = defaultSamplePrompts(N, 4);
    const sampleMs: number[] = [];
    for (const [i, p] of prompts.entries()) {
      const [, t] = await timed(() => sampleConcepts(pipeline, p2.concepts!, [p], o.sampling, { seed: i }));
      if (i > 0) sampleMs.push(t);
    }
    await pipeline.release();

    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    const result = {
      preset: 'tiny',
      threads: o.intraOpNumThreads ?? null,
      cpus: os.cpus().length,
      node: process.versions.node,
      training: { phase1: p1.numbers, phase2: p2.numbers, forwardSplitAtBatch2: parts },
      augmentation: {
        count: augmented.length,
        totalMs: augmentMs,
        draftMs,
        composeMs,
        gsaPerImageInRunMs: gsaInRunMs,
        gsaPerImageMs: median(gsaAlone),
        gsaSchedule: `${Math.floor(o.augmentation.gsaSteps * o.augmentation.gsaStrength)} of ${o.augmentation.gsaSteps} DDIM steps`,
        guidedUnetStepMs: perGuidedStep,
        extrapolatedGsaFast50Ms: 35 * perGuidedStep,
        extrapolatedGsaPaper700Ms: 700 * perGuidedStep,
      },
      sampling: { perSampleMs: median(sampleMs), steps: o.sampling.steps, guidance: o.sampling.guidance },
      peakRssMiB,
    };
    const line = (name: string, p: PhaseNumbers) =>
      `  ${name}: step ${ms(p.stepMs)} = batch ${ms(p.batchMs)} + forward/backward ${ms(p.forwardBackwardMs)} (forward ${ms(p.forwardOnlyMs)}, backward ~${ms(p.backwardMs)}) + optimizer ${ms(p.optimizerMs)}; ${p.trainables} trainable values`;
    process.stdout.write(
      [
        `dynasyn tiny preset on the tiny bundle (${result.cpus} CPUs, onnxruntime threads ${result.threads ?? 'default'}), medians`,
        'training step:',
        line('phase 1', p1.numbers),
        line('phase 2', p2.numbers),
        `  forward split at batch 2 (standalone models): text encoder ${ms(parts.textEncoderMs)}, UNet with attention capture ${ms(parts.unetMs)}`,
        `augmentation (${augmented.length} images, ${ms(augmentMs)} in all): draft ${ms(draftMs)}, compose+inpaint ${ms(composeMs)}, GSA ${ms(median(gsaAlone))} per image (${result.augmentation.gsaSchedule})`,
        `  guided UNet step ${ms(perGuidedStep)}: GSA fast (35 steps) ~${ms(35 * perGuidedStep)}, paper (700 steps) ~${ms(700 * perGuidedStep)} per image on this bundle`,
        `sampling: ${ms(median(sampleMs))} per sample (${o.sampling.steps} DDIM steps, guidance ${o.sampling.guidance}, adapters merged)`,
        `peak memory (maxRSS): ${peakRssMiB.toFixed(0)} MiB`,
        '',
      ].join('\n'),
    );
    const out = arg('json');
    if (out) fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
