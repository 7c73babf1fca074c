/**
 * The stages after training: sample (the initial prompts with the learned placeholders and adapters), evaluate
 * (CLIP-T / CLIP-I, when a CLIP model is given; the toy-world judge's scores too when a judge is given) and report; and a sampler for later requests, one prompt at a time.
 */
import { join } from 'node:path';
import { withCleanup } from '@dynasyn/domain';
import { encodePng } from '@dynasyn/imaging';
import { markPhaseCompleted, MetricsRecorder, readLearnedConcepts, readSamples, writeSamples, type SampleEntry } from '../output/artifacts.js';
import { renderReport } from '../output/report.js';
import { ClipModel } from '../output/clip.js';
import { evaluateOutputDir } from '../output/evaluate.js';
import { loadToyworldJudge, type ToyworldJudge } from '../evaluate/judge.js';
import { DEFAULT_SAMPLE_COUNTS } from '../presets.js';
import { categorizePrompt, createPersonalizedPipeline, defaultSamplePrompts, sampleConcepts, type SamplePrompt } from '../sample.js';
import type { DynasynOptions, SampleSettings } from '../types.js';
import { completedPhases } from './prepare.js';
import { cacheDirOf, emitterOf, runtimeOf, type StageRun } from './run.js';

export interface SampleStageRun extends StageRun {
  /** Prompts with `<assetN>`; default the options' prompts, else DEFAULT_SAMPLE_COUNTS[preset] built-in ones. */
  prompts?: SamplePrompt[];
}

/** The prompts a run samples when none are given: the options' own, else built-in ones for `subjects`. */
export function initialSamplePrompts(o: DynasynOptions, subjects: number): SamplePrompt[] {
  return o.sampling.prompts.length
    ? o.sampling.prompts.map((prompt) => ({ prompt, category: categorizePrompt(prompt) }))
    : defaultSamplePrompts(subjects, DEFAULT_SAMPLE_COUNTS[o.preset]);
}

/**
 * Samples with the concepts training wrote (checked against the backbone), into `samples/` + samples.json and
 * phase `sample`; a directory with phase `sample` returns its samples. Progress `sample`, one step per denoising step.
 */
export async function sampleStage(run: SampleStageRun): Promise<SampleEntry[]> {
  const { dir, options: o } = run;
  if (completedPhases(dir).includes('sample')) return readSamples(dir);
  const emit = emitterOf(run);
  const concepts = readLearnedConcepts(dir, { backboneDir: run.bundle.dir });
  const prompts = run.prompts ?? initialSamplePrompts(o, run.input.subjects.length);
  const metrics = MetricsRecorder.open(dir);
  const records = await metrics.time('sample', async () => {
    const pipeline = await createPersonalizedPipeline(run.bundle, concepts, { ...runtimeOf(o), cacheDir: join(cacheDirOf(run), 'personalized') });
    return withCleanup(
      () =>
        sampleConcepts(pipeline, concepts, prompts, o.sampling, {
          seed: o.seed,
          onProgress: (step, total) => emit({ stage: 'sample', step, total }),
          ...(run.signal ? { signal: run.signal } : {}),
        }),
      () => [() => pipeline.release()],
    );
  });
  const samples = await writeSamples(dir, records, o.sampling);
  metrics.flush();
  markPhaseCompleted(dir, 'sample');
  return samples;
}

/**
 * CLIP-T / CLIP-I of the samples (scores into samples.json, summary into metrics.json) and phase `evaluate`. With
 * `judgeModelDir` (a packages/toyworld-judge folder) also the judge's identity acc., attributes kept and prompt acc.,
 * against the identities it reads in the reference inside the masks.
 */
export async function evaluateStage(run: Pick<StageRun, 'dir' | 'options' | 'onProgress'>, clipModelDir: string, judgeModelDir?: string): Promise<void> {
  if (completedPhases(run.dir).includes('evaluate')) return;
  const emit = emitterOf(run);
  emit({ stage: 'evaluate', step: 0, total: 1 });
  const t0 = performance.now();
  const clip = await ClipModel.load(clipModelDir, runtimeOf(run.options));
  let judge: ToyworldJudge | undefined;
  await withCleanup(
    async () => {
      if (judgeModelDir !== undefined) judge = await loadToyworldJudge(judgeModelDir);
      await evaluateOutputDir(run.dir, clip, judge && { model: judgeModelDir!, judge });
    },
    () => [() => clip.release(), judge?.release && (() => judge!.release!())],
  );
  const after = MetricsRecorder.open(run.dir); // evaluateOutputDir wrote metrics.json itself
  after.addTiming('evaluate', performance.now() - t0);
  after.flush();
  markPhaseCompleted(run.dir, 'evaluate');
  emit({ stage: 'evaluate', step: 1, total: 1 });
}

/** report.html from what the run directory holds, and phase `report`; returns the report's path. */
export async function reportStage(run: Pick<StageRun, 'dir' | 'onProgress'>): Promise<string> {
  const emit = emitterOf(run);
  emit({ stage: 'report', step: 0, total: 1 });
  const reportPath = await renderReport(run.dir);
  markPhaseCompleted(run.dir, 'report');
  emit({ stage: 'report', step: 1, total: 1 });
  return reportPath;
}

/** One image of a later sample request: its prompt, seed and settings (the options' sampling settings by default). */
export interface SampleRequestItem {
  prompt: string;
  seed: number;
  settings?: Partial<Pick<SampleSettings, 'steps' | 'guidance' | 'scheduler'>>;
}

export interface ConceptSampler {
  /** Renders one item as a PNG. */
  renderPng(item: SampleRequestItem, signal?: AbortSignal): Promise<Uint8Array>;
  release(): Promise<void>;
}

/**
 * A sampler with the concepts of a trained run directory (manifest.json, embeddings, adapters), for sample
 * requests after the run: the pipeline is built once and renders one prompt at a time.
 */
export async function openConceptSampler(run: Pick<StageRun, 'dir' | 'bundle' | 'options' | 'cacheDir'>): Promise<ConceptSampler> {
  const o = run.options;
  const concepts = readLearnedConcepts(run.dir, { backboneDir: run.bundle.dir });
  const pipeline = await createPersonalizedPipeline(run.bundle, concepts, { ...runtimeOf(o), cacheDir: cacheDirOf(run) });
  return {
    renderPng: async (item, signal) => {
      const settings = {
        steps: item.settings?.steps ?? o.sampling.steps,
        guidance: item.settings?.guidance ?? o.sampling.guidance,
        scheduler: item.settings?.scheduler ?? o.sampling.scheduler,
        seeds: [item.seed],
      };
      const [rec] = await sampleConcepts(pipeline, concepts, [{ prompt: item.prompt, category: categorizePrompt(item.prompt) }], settings, {
        seed: item.seed,
        ...(signal ? { signal } : {}),
      });
      return encodePng(rec!.image);
    },
    release: () => pipeline.release(),
  };
}
