/**
 * The whole job in one process (DESIGN.md "Data flow"): validate the input, then the stage functions of
 * pipeline/ in order on `outDir`: prepare -> augment (composed/) -> gsa (augmented/), or an augmented set made
 * before -> train phase 1 and 2 (resuming from checkpoints) -> sample -> evaluate (when a CLIP model is given; a judge adds its scores)
 * -> report. The service's stage handlers run the same functions, one per worker. Each stage returns what
 * `outDir` already holds, so rerunning with the same `outDir` skips finished stages and resumes training.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { withCleanup } from '@dynasyn/domain';
import { ClipTokenizer, DiffusionPipeline, loadBundle, type ModelBundle } from '@dynasyn/diffusion';
import { loadAugmented, saveAugmented } from './augment/storage.js';
import { InputError } from './input-error.js';
import { loadInput, readInputFiles, type InputFiles, type InputSource } from './inputs.js';
import {
  artifactPath,
  fingerprintBackbone,
  fingerprintDifferences,
  markPhaseCompleted,
  readInputs,
  readManifest,
  readSamples,
  referencePath,
  writeSamples,
  type Manifest,
  type SampleEntry,
} from './output/artifacts.js';
import {
  augmentOnBase,
  augmentStage,
  evaluateStage,
  gsaStage,
  holdsSet,
  prepareStage,
  reportStage,
  sampleStage,
  trainStage,
  type StageRun,
} from './pipeline/index.js';
import { completedPhases } from './pipeline/prepare.js';
import { runtimeOf } from './pipeline/run.js';
import { resultOptions } from './presets.js';
import { initialSamplePrompts } from './pipeline/sample.js';
import { checkPrompt } from './inputs.js';
import { toClassPrompt, type SamplePrompt, type SampleRecord } from './sample.js';
import type { TrainResult } from './train/trainer.js';
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
  /**
   * A toy-world judge folder (packages/toyworld-judge, models/toyworld-judge): its identity acc., attributes kept and
   * prompt acc. beside CLIP's, so it needs `clipModelDir` (BAD_OPTION without).
   */
  judgeModelDir?: string;
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
  if (req.judgeModelDir !== undefined && req.clipModelDir === undefined)
    throw new InputError('BAD_OPTION', "a judge model needs a CLIP model: the judge's scores extend the CLIP evaluation");
  mkdirSync(outDir, { recursive: true });

  emit({ stage: 'prepare', step: 0, total: 1, message: 'validating the input' });
  const bundle = loadBundle(req.backbone);
  const input = await prepareInput(req, bundle);
  await checkSameRun(outDir, req.backbone, input, o); // a run already in outDir must be this run
  const run: StageRun = {
    dir: outDir,
    bundle,
    input,
    options: o,
    cacheDir: req.cacheDir ?? join(outDir, 'cache'),
    onProgress: emit,
    ...(req.signal ? { signal: req.signal } : {}),
  };
  await prepareStage(run);
  emit({ stage: 'prepare', step: 1, total: 1 });

  req.signal?.throwIfAborted();
  if (!holdsSet(outDir, 'augmented')) {
    if (req.augmentedDir !== undefined) await importAugmented(outDir, req.augmentedDir, input.subjects.length);
    else {
      await augmentStage(run);
      req.signal?.throwIfAborted();
      await gsaStage(run);
    }
  }
  req.signal?.throwIfAborted();
  const { concepts, trained } = await trainStage({ ...run, ...(req.graphCacheDir !== undefined ? { graphCacheDir: req.graphCacheDir } : {}) });
  req.signal?.throwIfAborted();
  const samples = await sampleStage({ ...run, ...(req.prompts ? { prompts: req.prompts } : {}) });
  if (req.clipModelDir !== undefined) await evaluateStage(run, req.clipModelDir, req.judgeModelDir);
  const reportPath = await reportStage(run);
  return {
    outDir,
    reportPath,
    manifest: readManifest(outDir),
    concepts,
    samples,
    ...(trained ? { alignment: trained.alignment, ...(trained.resumedFrom ? { resumedFrom: trained.resumedFrom } : {}) } : {}),
  };
}

/**
 * The baseline every personalization must beat: no training, the backbone draws each prompt with the class
 * words in place of the placeholders (`<asset0> jumping` -> `dog jumping`), with the seeds and sampling settings
 * the personalization's sample stage uses. Writes the same run layout (input/, samples/, samples.json with the
 * placeholder prompts, so a judge knows which reference subject each class word stands for); resumable.
 */
export async function sampleClassWords(
  req: Pick<PersonalizeRequest, 'backbone' | 'input' | 'options' | 'outDir' | 'prompts' | 'maxSubjects' | 'onProgress' | 'signal'> & {
    /** Words for the placeholders instead of the subjects' class words (one per subject; e.g. each subject described). */
    words?: string[];
  },
): Promise<SampleEntry[]> {
  const outDir = resolve(req.outDir);
  const o = req.options;
  mkdirSync(outDir, { recursive: true });
  const bundle = loadBundle(req.backbone);
  const input = await prepareInput(req, bundle);
  await checkSameRun(outDir, req.backbone, input, o);
  await prepareStage({ dir: outDir, bundle, input, options: o });
  if (completedPhases(outDir).includes('sample')) return readSamples(outDir);
  const prompts = req.prompts ?? initialSamplePrompts(o, input.subjects.length);
  const s = o.sampling;
  if (s.seeds && s.seeds.length !== prompts.length) throw new InputError('BAD_OPTION', `${s.seeds.length} seeds for ${prompts.length} prompts`);
  const classWords = input.subjects.map((x) => x.classWord);
  if (req.words && req.words.length !== classWords.length)
    throw new InputError('BAD_OPTION', `${req.words.length} words for the placeholders of ${classWords.length} subjects`);
  const words = req.words ?? classWords;
  const pipeline = await DiffusionPipeline.create(bundle, runtimeOf(o));
  const records: SampleRecord[] = [];
  const draw = async () => {
    for (const [i, p] of prompts.entries()) {
      req.signal?.throwIfAborted();
      checkPrompt(p.prompt, classWords.length);
      const classPrompt = toClassPrompt(p.prompt, words);
      const r = await pipeline.textToImage({
        prompt: classPrompt,
        steps: s.steps,
        guidance: s.guidance,
        scheduler: s.scheduler,
        seed: s.seeds?.[i] ?? (o.seed + i) % 2 ** 32,
        ...(req.onProgress
          ? { onProgress: (step: number) => req.onProgress!({ stage: 'sample', step: i * s.steps + step, total: prompts.length * s.steps }) }
          : {}),
      });
      records.push({ ...p, classPrompt, seed: r.seeds[0]!, image: r.images[0]! });
    }
  };
  await withCleanup(draw, () => [() => pipeline.release()]);
  const samples = await writeSamples(outDir, records, s);
  markPhaseCompleted(outDir, 'sample');
  return samples;
}

/** `augmentedDir` of personalize: a set made before (`dynasyn augment`) stands for the augment and gsa stages. */
async function importAugmented(outDir: string, from: string, subjects: number): Promise<void> {
  const set = await loadAugmented(from);
  checkAugmentedSubjects(set, subjects, from);
  await saveAugmented(artifactPath(outDir, 'augmented'), set);
  markPhaseCompleted(outDir, 'augment');
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

/** Refuses an outDir that holds another personalization (backbone, class words, options, image or masks). */
async function checkSameRun(outDir: string, backbone: string, input: PersonalizationInput, o: DynasynOptions): Promise<void> {
  if (!existsSync(artifactPath(outDir, 'manifest'))) return;
  const m = readManifest(outDir);
  const other = (why: string): never => {
    throw new InputError('BAD_OPTION', `${outDir} holds another personalization (${why}): choose another output directory or remove it`);
  };
  const classWords = input.subjects.map((s) => s.classWord);
  if (JSON.stringify(m.classWords) !== JSON.stringify(classWords)) other(`class words ${m.classWords.join(', ')}`);
  // a run may resume on another device or thread count: only what decides its results must match
  const changed = differingPaths(typeof m.options === 'object' && m.options ? resultOptions(m.options) : m.options, resultOptions(o));
  if (changed.length) other(`different options: ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ', ...' : ''}`);
  const diff = fingerprintDifferences(m.backbone.fingerprint, fingerprintBackbone(resolve(backbone)));
  if (diff.length) other(`backbone ${m.backbone.path}: ${diff[0]}`);
  if (existsSync(referencePath(outDir))) {
    const saved = await readInputs(outDir);
    const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
    if (
      !same(saved.image.data, input.image.data) ||
      saved.masks.length !== input.subjects.length ||
      saved.masks.some((mk, i) => !same(mk.data, input.subjects[i]!.mask.data))
    ) {
      other('a different image or masks');
    }
  }
}
