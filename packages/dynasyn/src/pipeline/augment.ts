/**
 * The augment and gsa stages (METHOD.md "Prompt-and-image augmentation"), and their halves on the base model.
 * augment: steps 1-4 (prompts, drafts, pseudo masks, composition), each example's GSA seed drawn with the others,
 * kept in `composed/`; gsa: step 5 on that set, kept in `augmented/`, which training reads. Split in two so an
 * interrupted GSA (minutes per image with the paper's schedule) resumes without redrawing the drafts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { withCleanup } from '@dynasyn/domain';
import { DiffusionPipeline, type ModelBundle, type RuntimeOptions } from '@dynasyn/diffusion';
import { applyGsa, augment, composeAugmentations, type AugmentedSample, type ComposedSample } from '../augment/augment.js';
import { AUGMENTED_MANIFEST, loadAugmented, loadComposed, saveAugmented, type LoadedAugmentedExample } from '../augment/storage.js';
import { artifactPath, markPhaseCompleted, MetricsRecorder } from '../output/artifacts.js';
import type { DynasynOptions, PersonalizationInput, ProgressListener } from '../types.js';
import { cacheDirOf, emitterOf, runtimeOf, type StageRun } from './run.js';

/** True when `dir` holds a saved set of `folder` (the set's manifest is written last). */
export const holdsSet = (dir: string, folder: 'composed' | 'augmented'): boolean => existsSync(join(artifactPath(dir, folder), AUGMENTED_MANIFEST));

/**
 * Augmentation steps 1-4 into `composed/` and phase `compose`; a directory that already holds the composed set
 * returns it. Progress `augment`, one step per draft and per composition, ending at step == total (1/1 for none).
 */
export async function augmentStage(run: StageRun): Promise<ComposedSample[]> {
  const composedDir = artifactPath(run.dir, 'composed');
  if (holdsSet(run.dir, 'composed')) return loadComposed(composedDir);
  const emit = emitterOf(run);
  const metrics = MetricsRecorder.open(run.dir);
  const composed = await metrics.time('augment', () =>
    composeOnBase(run.bundle, run.input, run.options, {
      cacheDir: cacheDirOf(run),
      // composition takes no signal; its progress comes after each draft and each composed image, so an abort
      // thrown from here stops it within one image
      onProgress: (e) => {
        run.signal?.throwIfAborted();
        emit(e);
      },
    }),
  );
  run.signal?.throwIfAborted();
  await saveAugmented(composedDir, composed, 'composed');
  metrics.flush();
  markPhaseCompleted(run.dir, 'compose');
  const total = Math.max(1, 2 * composed.length);
  emit({ stage: 'augment', step: total, total });
  return composed;
}

/**
 * Augmentation step 5 (GSA) of the set in `composed/` into `augmented/` and phase `augment`; a directory that
 * already holds the augmented set returns it. Progress `gsa`, one step per image (1/1 for none).
 */
export async function gsaStage(run: StageRun): Promise<LoadedAugmentedExample[]> {
  const augmentedDir = artifactPath(run.dir, 'augmented');
  if (holdsSet(run.dir, 'augmented')) return loadAugmented(augmentedDir);
  const emit = emitterOf(run);
  const composed = await loadComposed(artifactPath(run.dir, 'composed'));
  const total = Math.max(1, composed.length);
  emit({ stage: 'gsa', step: 0, total });
  const metrics = MetricsRecorder.open(run.dir);
  const augmented = await metrics.time('gsa', () =>
    gsaOnBase(run.bundle, composed, run.options, {
      cacheDir: cacheDirOf(run),
      onProgress: emit,
      ...(run.signal ? { signal: run.signal } : {}),
    }),
  );
  run.signal?.throwIfAborted();
  await saveAugmented(augmentedDir, augmented);
  metrics.flush();
  markPhaseCompleted(run.dir, 'augment');
  emit({ stage: 'gsa', step: total, total });
  return augmented;
}

export interface BaseRunOptions {
  /** Rewritten models and derived graphs (`<cacheDir>/base`). */
  cacheDir?: string;
  onProgress?: ProgressListener;
}

/** Runs `fn` with a pipeline on the base model, released afterwards. */
async function withBasePipeline<T>(
  bundle: ModelBundle,
  o: DynasynOptions,
  cacheDir: string | undefined,
  fn: (p: DiffusionPipeline, runtime: RuntimeOptions) => Promise<T>,
): Promise<T> {
  const runtime = runtimeOf(o);
  const pipeline = await DiffusionPipeline.create(bundle, { ...runtime, ...(cacheDir !== undefined ? { cacheDir: join(cacheDir, 'base') } : {}) });
  return withCleanup(
    () => fn(pipeline, runtime),
    () => [() => pipeline.release()],
  );
}

/** Augmentation and GSA on the base model (METHOD.md "Prompt-and-image augmentation"), nothing written. */
export async function augmentOnBase(bundle: ModelBundle, input: PersonalizationInput, o: DynasynOptions, run: BaseRunOptions = {}): Promise<AugmentedSample[]> {
  if (o.augmentation.count === 0) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline, runtime) =>
    augment(input, pipeline, o.augmentation, { seed: o.seed, runtime, ...(run.onProgress ? { onProgress: run.onProgress } : {}) }),
  );
}

/** Augmentation steps 1-4 on the base model: the composed set, each example with its GSA seed; nothing written. */
export async function composeOnBase(bundle: ModelBundle, input: PersonalizationInput, o: DynasynOptions, run: BaseRunOptions = {}): Promise<ComposedSample[]> {
  if (o.augmentation.count === 0) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline, runtime) =>
    composeAugmentations(input, pipeline, o.augmentation, { seed: o.seed, runtime, ...(run.onProgress ? { onProgress: run.onProgress } : {}) }),
  );
}

/** Augmentation step 5 (GSA) of a composed set on the base model; nothing written. */
export async function gsaOnBase(
  bundle: ModelBundle,
  composed: readonly ComposedSample[],
  o: DynasynOptions,
  run: BaseRunOptions & { signal?: AbortSignal } = {},
): Promise<AugmentedSample[]> {
  if (!composed.length) return [];
  return withBasePipeline(bundle, o, run.cacheDir, (pipeline) =>
    applyGsa(pipeline, composed, o.augmentation, { ...(run.onProgress ? { onProgress: run.onProgress } : {}), ...(run.signal ? { signal: run.signal } : {}) }),
  );
}
