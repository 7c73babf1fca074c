/**
 * The whole job in one process (DESIGN.md "Data flow"): validate the input -> augment: compose (kept in
 * composed/) then GSA (kept in augmented/), or reuse what the output directory already holds -> train phase 1
 * and 2 (resuming from checkpoints) ->
 * sample -> evaluate (when a CLIP model is given) -> report. Everything lands in `outDir` through the
 * output/ functions; rerunning with the same `outDir` skips finished stages and resumes training.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClipTokenizer, DiffusionPipeline, loadBundle, type ModelBundle, type RuntimeOptions } from '@dynasyn/diffusion';
import { applyGsa, augment, composeAugmentations, type AugmentedSample, type ComposedSample } from './augment/augment.js';
import { AUGMENTED_MANIFEST, loadAugmented, loadComposed, saveAugmented } from './augment/storage.js';
import { InputError } from './input-error.js';
import { loadInput, readInputFiles, type InputFiles, type InputSource } from './inputs.js';
import {
  artifactPath, attentionVsMask, createManifest, fingerprintBackbone, fingerprintDifferences, addManifestNotes, markPhaseCompleted, MetricsRecorder,
  readInputs, readLearnedConcepts, readManifest, readSamples, referencePath, writeAttentionHeatmaps, writeInputs, writeLearnedConcepts, writeManifest, writeSamples,
  type Manifest, type SampleEntry,
} from './output/artifacts.js';
import { ClipModel } from './output/clip.js';
import { evaluateOutputDir } from './output/evaluate.js';
import { renderReport } from './output/report.js';
import { DEFAULT_SAMPLE_COUNTS } from './presets.js';
import { categorizePrompt, createPersonalizedPipeline, defaultSamplePrompts, sampleConcepts, type SamplePrompt } from './sample.js';
import { trainPersonalization, type TrainResult } from './train/trainer.js';
import { graphCacheDir } from './train/graph-cache.js';
import type { AugmentedExample, DynasynOptions, LearnedConcepts, PersonalizationInput, ProgressListener } from './types.js';

export interface PersonalizeRequest {
  /** Model bundle directory (DESIGN.md "Model bundle"). */
  backbone: string;
  /** Image and mask files (as the CLI takes them) or encoded/decoded data; fitted to the backbone size here. */
  input: InputFiles | InputSource;
  /** Resolved options (presets.ts resolveOptions). */
  options: DynasynOptions;
  /** Output directory; an existing one of the same run is resumed. */
  outDir: string;
  /** Sample prompts with `<assetN>`; default: DEFAULT_SAMPLE_COUNTS[preset] built-in prompts. */
  prompts?: SamplePrompt[];
  /** A CLIP ONNX folder (output/clip.ts layouts): CLIP-T and CLIP-I of the samples, per prompt category. */
  clipModelDir?: string;
  /** An augmented set made before (`dynasyn augment`) to train with instead of augmenting. */
  augmentedDir?: string;
  /** Placeholder slots (maxSubjects of the input validation). Default 8. */
  maxSubjects?: number;
  /** Rewritten models of this run (merged adapters, attention capture); default `<outDir>/cache`. */
  cacheDir?: string;
  /**
   * Derived training graphs, shared by runs: a second run on the same backbone and options skips the
   * derivation. Default graphCacheDir(backbone) (ort-training's cache, on the backbone's filesystem).
   */
  graphCacheDir?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface PersonalizeResult {
  outDir: string;
  reportPath: string;
  manifest: Manifest;
  concepts: LearnedConcepts;
  samples: SampleEntry[];
  /** Attention-vs-mask numbers before and after training (absent when training was already complete). */
  alignment?: TrainResult['alignment'];
  /** Where training resumed, when it did. */
  resumedFrom?: { phase: 1 | 2; step: number };
}

const isFiles = (x: InputFiles | InputSource): x is InputFiles => typeof (x as InputFiles).image === 'string';

/** Runs the whole personalization; see the file header. */
export async function personalize(req: PersonalizeRequest): Promise<PersonalizeResult> {
  const outDir = resolve(req.outDir);
  const o = req.options;
  const emit = req.onProgress ?? (() => {});
  const cacheDir = req.cacheDir ?? join(outDir, 'cache');
  const runtime = runtimeOf(o);
  mkdirSync(outDir, { recursive: true });

  // prepare: input, manifest (a run already in outDir must be this run)
  emit({ stage: 'prepare', step: 0, total: 1, message: 'validating the input' });
  const bundle = loadBundle(req.backbone);
  const input = await prepareInput(req, bundle);
  const metrics = MetricsRecorder.open(outDir);
  let manifest = await openManifest(outDir, req.backbone, input, o);
  await writeInputs(outDir, input.image, input.subjects.map((s) => s.mask));
  manifest = markPhaseCompleted(outDir, 'prepare');
  emit({ stage: 'prepare', step: 1, total: 1 });

  // augment + GSA on the base model, unless the set is already there
  req.signal?.throwIfAborted();
  const augDir = artifactPath(outDir, 'augmented');
  let augmented: AugmentedExample[];
  if (existsSync(join(augDir, AUGMENTED_MANIFEST))) {
    augmented = await loadAugmented(augDir);
  } else if (req.augmentedDir !== undefined) {
    augmented = await loadAugmented(req.augmentedDir);
    checkAugmentedSubjects(augmented, input.subjects.length, req.augmentedDir);
    await saveAugmented(augDir, augmented);
    manifest = markPhaseCompleted(outDir, 'augment');
  } else {
    // composition first, kept on disk, so an interrupted GSA resumes without redrawing the drafts
    const composedDir = artifactPath(outDir, 'composed');
    let composed: ComposedSample[];
    if (existsSync(join(composedDir, AUGMENTED_MANIFEST))) {
      composed = await loadComposed(composedDir);
    } else {
      composed = await metrics.time('augment', () => composeOnBase(bundle, input, o, { cacheDir, onProgress: emit }));
      await saveAugmented(composedDir, composed, 'composed');
      metrics.flush();
      manifest = markPhaseCompleted(outDir, 'compose');
    }
    req.signal?.throwIfAborted();
    augmented = await metrics.time('gsa', () => gsaOnBase(bundle, composed, o, { cacheDir, onProgress: emit, ...(req.signal ? { signal: req.signal } : {}) }));
    await saveAugmented(augDir, augmented);
    metrics.flush();
    manifest = markPhaseCompleted(outDir, 'augment');
  }

  // train (checkpoints in outDir/checkpoints: a rerun resumes where the last one stopped)
  req.signal?.throwIfAborted();
  let concepts: LearnedConcepts;
  let trained: TrainResult | undefined;
  if (manifest.phasesCompleted.includes('phase2') && existsSync(artifactPath(outDir, 'embeddings'))) {
    concepts = readLearnedConcepts(outDir);
  } else {
    let rows = 0;
    trained = await metrics.time('train', () => trainPersonalization({
      bundle, input, augmented, options: o.train, seed: o.seed, cacheDir: req.graphCacheDir ?? graphCacheDir(bundle.dir), checkpointDir: artifactPath(outDir, 'checkpoints'),
      executionProviders: o.executionProviders, ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
      onProgress: emit,
      // metrics.json follows training, so an interrupted run still shows its losses
      onMetrics: (row) => { metrics.recordStep(row); if (++rows % 10 === 0) metrics.flush(); },
      ...(req.signal ? { signal: req.signal } : {}),
    }).finally(() => metrics.flush()));
    concepts = trained.concepts;
    if (trained.notes.length) addManifestNotes(outDir, trained.notes);
    for (const row of trained.metrics) metrics.recordStep(row); // steps done before a resume, too
    writeLearnedConcepts(outDir, concepts);
    const { grid: [gh, gw], before, after } = trained.alignment;
    for (const [when, snap] of [['before', before], ['after', after]] as const) {
      await writeAttentionHeatmaps(outDir, when, input.image, snap.placeholders.map((p) => p.map), gh, gw);
      metrics.setAttention(when, snap.placeholders.map((p, i) => attentionVsMask(p.token, p.map, gh, gw, input.subjects[i]!.mask)));
    }
    metrics.flush();
    markPhaseCompleted(outDir, 'phase1');
    manifest = markPhaseCompleted(outDir, 'phase2');
  }

  // sample with the learned placeholders and adapters
  req.signal?.throwIfAborted();
  let samples: SampleEntry[];
  if (manifest.phasesCompleted.includes('sample')) {
    samples = readSamples(outDir);
  } else {
    const prompts = req.prompts ?? (o.sampling.prompts.length
      ? o.sampling.prompts.map((prompt) => ({ prompt, category: categorizePrompt(prompt) }))
      : defaultSamplePrompts(input.subjects.length, DEFAULT_SAMPLE_COUNTS[o.preset]));
    const records = await metrics.time('sample', async () => {
      const pipeline = await createPersonalizedPipeline(bundle, concepts, { ...runtime, cacheDir: join(cacheDir, 'personalized') });
      try {
        return await sampleConcepts(pipeline, concepts, prompts, o.sampling, {
          seed: o.seed, onProgress: (step, total) => emit({ stage: 'sample', step, total }), ...(req.signal ? { signal: req.signal } : {}),
        });
      } finally {
        await pipeline.release();
      }
    });
    samples = await writeSamples(outDir, records, o.sampling);
    metrics.flush();
    manifest = markPhaseCompleted(outDir, 'sample');
  }

  // CLIP-T / CLIP-I when a CLIP model is given (per-sample scores into samples.json, summary into metrics.json)
  if (req.clipModelDir !== undefined && !manifest.phasesCompleted.includes('evaluate')) {
    emit({ stage: 'evaluate', step: 0, total: 1 });
    const t0 = performance.now();
    const clip = await ClipModel.load(req.clipModelDir, runtime);
    try {
      await evaluateOutputDir(outDir, clip);
    } finally {
      await clip.release();
    }
    const after = MetricsRecorder.open(outDir); // evaluateOutputDir wrote metrics.json itself
    after.addTiming('evaluate', performance.now() - t0);
    after.flush();
    manifest = markPhaseCompleted(outDir, 'evaluate');
    emit({ stage: 'evaluate', step: 1, total: 1 });
  }

  emit({ stage: 'report', step: 0, total: 1 });
  const reportPath = await renderReport(outDir);
  manifest = markPhaseCompleted(outDir, 'report');
  emit({ stage: 'report', step: 1, total: 1 });
  return {
    outDir, reportPath, manifest, concepts, samples,
    ...(trained ? { alignment: trained.alignment, ...(trained.resumedFrom ? { resumedFrom: trained.resumedFrom } : {}) } : {}),
  };
}

export interface BaseRunOptions {
  /** Rewritten models and derived graphs (`<cacheDir>/base`). */
  cacheDir?: string;
  onProgress?: ProgressListener;
}

/** Runs `fn` with a pipeline on the base model, released afterwards. */
async function withBasePipeline<T>(bundle: ModelBundle, o: DynasynOptions, cacheDir: string | undefined, fn: (p: DiffusionPipeline, runtime: RuntimeOptions) => Promise<T>): Promise<T> {
  const runtime = runtimeOf(o);
  const pipeline = await DiffusionPipeline.create(bundle, { ...runtime, ...(cacheDir !== undefined ? { cacheDir: join(cacheDir, 'base') } : {}) });
  try {
    return await fn(pipeline, runtime);
  } finally {
    await pipeline.release();
  }
}

/** Augmentation and GSA on the base model (METHOD.md "Prompt-and-image augmentation"), nothing written. */
export async function augmentOnBase(bundle: ModelBundle, input: PersonalizationInput, o: DynasynOptions, run: BaseRunOptions = {}): Promise<AugmentedSample[]> {
  if (o.augmentation.count === 0) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline, runtime) =>
    augment(input, pipeline, o.augmentation, { seed: o.seed, runtime, ...(run.onProgress ? { onProgress: run.onProgress } : {}) }));
}

/** Augmentation steps 1-4 on the base model: the composed set, each example with its GSA seed; nothing written. */
export async function composeOnBase(bundle: ModelBundle, input: PersonalizationInput, o: DynasynOptions, run: BaseRunOptions = {}): Promise<ComposedSample[]> {
  if (o.augmentation.count === 0) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline, runtime) =>
    composeAugmentations(input, pipeline, o.augmentation, { seed: o.seed, runtime, ...(run.onProgress ? { onProgress: run.onProgress } : {}) }));
}

/** Augmentation step 5 (GSA) of a composed set on the base model; nothing written. */
export async function gsaOnBase(bundle: ModelBundle, composed: readonly ComposedSample[], o: DynasynOptions, run: BaseRunOptions & { signal?: AbortSignal } = {}): Promise<AugmentedSample[]> {
  if (!composed.length) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline) =>
    applyGsa(pipeline, composed, o.augmentation, { ...(run.onProgress ? { onProgress: run.onProgress } : {}), ...(run.signal ? { signal: run.signal } : {}) }));
}

export interface AugmentRequest {
  backbone: string;
  input: InputFiles | InputSource;
  options: DynasynOptions;
  /** Where the augmented set goes (loadable with `augmentedDir` of personalize, or `dynasyn personalize --augmented`). */
  outDir: string;
  maxSubjects?: number;
  onProgress?: ProgressListener;
}

/** `dynasyn augment`: validates the input and writes its augmented set (images, masks, prompts) to outDir. */
export async function augmentToDir(req: AugmentRequest): Promise<{ dir: string; manifestFile: string; examples: AugmentedExample[] }> {
  const bundle = loadBundle(req.backbone);
  const input = await prepareInput(req, bundle);
  const dir = resolve(req.outDir);
  const examples = await augmentOnBase(bundle, input, req.options, req.onProgress ? { onProgress: req.onProgress } : {});
  const manifestFile = await saveAugmented(dir, examples);
  return { dir, manifestFile, examples };
}

/** Dotted paths where two JSON values differ (`seed`, `train.phase1.steps`). */
function differingPaths(a: unknown, b: unknown, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differingPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return [at || '(root)'];
}

const runtimeOf = (o: DynasynOptions): RuntimeOptions => ({ executionProviders: o.executionProviders, ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}) });

function checkAugmentedSubjects(set: readonly AugmentedExample[], subjects: number, dir: string): void {
  for (const [i, e] of set.entries()) {
    const bad = e.subjects.find((k) => !(k >= 0 && k < subjects));
    if (bad !== undefined) throw new InputError('BAD_OPTION', `augmented set ${dir}: example ${i} names subject ${bad}, but the input has ${subjects}`);
  }
}

async function prepareInput(req: Pick<PersonalizeRequest, 'input' | 'maxSubjects'>, bundle: ModelBundle): Promise<PersonalizationInput> {
  const tokenizer = ClipTokenizer.fromDir(bundle.tokenizerDir);
  const limits = { tokenizer, ...(req.maxSubjects !== undefined ? { maxSubjects: req.maxSubjects } : {}) };
  return isFiles(req.input) ? readInputFiles(req.input, bundle.sampleSize, limits) : loadInput(req.input, bundle.sampleSize, limits);
}

/** The manifest of outDir: a new one, or the existing one when it is the same run (backbone, subjects, options). */
async function openManifest(outDir: string, backbone: string, input: PersonalizationInput, o: DynasynOptions): Promise<Manifest> {
  const tokens = input.subjects.map((_, i) => `<asset${i}>`);
  const classWords = input.subjects.map((s) => s.classWord);
  if (existsSync(artifactPath(outDir, 'manifest'))) {
    const m = readManifest(outDir);
    const other = (why: string): never => {
      throw new InputError('BAD_OPTION', `${outDir} holds another personalization (${why}): choose another output directory or remove it`);
    };
    if (JSON.stringify(m.classWords) !== JSON.stringify(classWords)) other(`class words ${m.classWords.join(', ')}`);
    const changed = differingPaths(m.options, o);
    if (changed.length) other(`different options: ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ', ...' : ''}`);
    const diff = fingerprintDifferences(m.backbone.fingerprint, fingerprintBackbone(resolve(backbone)));
    if (diff.length) other(`backbone ${m.backbone.path}: ${diff[0]}`);
    if (existsSync(referencePath(outDir))) {
      const saved = await readInputs(outDir);
      const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
      if (!same(saved.image.data, input.image.data) || saved.masks.length !== input.subjects.length || saved.masks.some((mk, i) => !same(mk.data, input.subjects[i]!.mask.data))) {
        other('a different image or masks');
      }
    }
    return m;
  }
  const m = createManifest({
    backboneDir: backbone, tokens, classWords, nounPhrases: input.subjects.map((s) => s.nounPhrase ?? s.classWord),
    preset: o.preset, seed: o.seed, options: o,
  });
  writeManifest(outDir, m);
  return m;
}
