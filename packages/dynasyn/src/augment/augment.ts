/**
 * The prompt-and-image augmentation (METHOD.md steps 1-5) in two parts that can run in different processes:
 * `composeAugmentations` (steps 1-4: noun phrases and prompts from a provider, drafts with attention pseudo
 * masks, composition with the reference subjects, inpainted holes) and `applyGsa` (step 5: Guided SDE
 * Augmentation of each composed image). `augment` runs both. Every random choice (template selection, each
 * example's draft / inpaint / GSA seeds, paste order) derives from `seed` through GaussianRng forks labelled
 * by example index and is drawn in the first part, so the same seed and inputs give the same set whether
 * the parts run together or apart.
 */
import { withCleanup } from '@dynasyn/domain';
import { GaussianRng, Unet, type DiffusionPipeline, type RuntimeOptions } from '@dynasyn/diffusion';
import type { AugmentationOptions, AugmentedExample, PersonalizationInput, ProgressListener, Subject } from '../types.js';
import { inpaintHoles, pasteSubjects } from './compose.js';
import { renderDrafts, type Draft } from './drafts.js';
import { AugmentationError } from './errors.js';
import { guidedSdeAugmentation } from './gsa.js';
import { OpenAiPromptProvider } from './openai-provider.js';
import { renderings, type AugmentationPrompt, type PromptProvider } from './prompt.js';
import { attentionMasks, createSamSegmenter } from './pseudo-masks.js';
import { TemplatePromptProvider } from './template-provider.js';

export interface AugmentRunOptions {
  /** Seed of every random choice. */
  seed: number;
  onProgress?: ProgressListener;
  /** A provider to use instead of the one `options.promptProvider` names (tests, custom sources). */
  provider?: PromptProvider;
  /** Placeholder tokens of the subjects; default `<asset0>..`. */
  placeholders?: readonly string[];
  /** Sessions of the attention-capturing UNet the drafts use. */
  runtime?: RuntimeOptions;
  /** A UNet created with `captureAttention` to reuse across calls (the caller releases it); default: one per call. */
  attentionUnet?: Unet;
  /** Negative prompt of drafts, inpainting and GSA. Default ''. */
  negativePrompt?: string;
}

/** An augmented example with what reproduces it. */
export interface AugmentedSample extends AugmentedExample {
  /** The slot template the three prompts render. */
  template: string;
  seeds: { draft: number; inpaint: number; gsa: number };
  /** Paste order of the subjects (indices into `subjects`' slots). */
  pasteOrder: number[];
}

/**
 * An example after composition and before GSA: `image` is the composed (pasted and inpainted) picture and
 * `seeds.gsa` the seed its GSA pass will use. Same fields as AugmentedSample, so it saves and loads alike.
 */
export type ComposedSample = AugmentedSample;

export interface GsaRunOptions {
  onProgress?: ProgressListener;
  /** Negative prompt of GSA. Default ''. */
  negativePrompt?: string;
  /** Checked before each image and after every denoising step: an abort stops GSA within one UNet call. */
  signal?: AbortSignal;
}

/** The provider an AugmentationOptions names. */
export function createPromptProvider(spec: AugmentationOptions['promptProvider'], seed: number): PromptProvider {
  if (spec.kind === 'templates') return new TemplatePromptProvider({ seed, ...(spec.mix ? { mix: spec.mix } : {}) });
  return new OpenAiPromptProvider({
    baseUrl: spec.baseUrl,
    model: spec.model,
    ...(spec.apiKey !== undefined ? { apiKey: spec.apiKey } : {}),
    ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}),
    ...(spec.retries !== undefined ? { retries: spec.retries } : {}),
  });
}

const seedOf = (rng: GaussianRng): number => rng.uniformInt(2 ** 31);

function shuffledRange(n: number, rng: GaussianRng): number[] {
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = rng.uniformInt(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function checkInput(input: PersonalizationInput, options: AugmentationOptions): void {
  if (!Number.isInteger(options.count) || options.count < 0)
    throw new AugmentationError('BAD_ARGUMENT', `augmentation count must be a non-negative integer, got ${options.count}`);
  if (!input.subjects.length) throw new AugmentationError('BAD_ARGUMENT', 'augmentation needs at least one subject');
  input.subjects.forEach((s, i) => {
    if (s.mask.width !== input.image.width || s.mask.height !== input.image.height) {
      throw new AugmentationError(
        'BAD_ARGUMENT',
        `mask of subject ${i} (${s.classWord}) is ${s.mask.width}x${s.mask.height}; the image is ${input.image.width}x${input.image.height}`,
      );
    }
    if (!s.mask.data.some((v) => v)) throw new AugmentationError('BAD_ARGUMENT', `mask of subject ${i} (${s.classWord}) is empty`);
  });
}

/** Steps 1-5: composition then GSA (the same set as `applyGsa(composeAugmentations(...))`). */
export async function augment(
  input: PersonalizationInput,
  pipeline: DiffusionPipeline,
  options: AugmentationOptions,
  run: AugmentRunOptions,
): Promise<AugmentedSample[]> {
  const composed = await composeAugmentations(input, pipeline, options, run);
  return applyGsa(pipeline, composed, options, {
    ...(run.onProgress ? { onProgress: run.onProgress } : {}),
    ...(run.negativePrompt !== undefined ? { negativePrompt: run.negativePrompt } : {}),
  });
}

/** Steps 1-4: prompts, drafts, pseudo masks, composition and inpainting; each example carries its GSA seed. */
export async function composeAugmentations(
  input: PersonalizationInput,
  pipeline: DiffusionPipeline,
  options: AugmentationOptions,
  run: AugmentRunOptions,
): Promise<ComposedSample[]> {
  checkInput(input, options);
  if (options.count === 0) return [];
  if (options.pseudoMasks.kind === 'sam') createSamSegmenter(options.pseudoMasks.modelDir);
  const root = new GaussianRng(run.seed).fork('augment');
  const emit = run.onProgress ?? (() => {});
  const count = options.count;

  // 1-2: noun phrases and prompts
  emit({ stage: 'augment', step: 0, total: 2 * count, message: 'prompts' });
  const provider = run.provider ?? createPromptProvider(options.promptProvider, seedOf(root.fork('prompts')));
  const phrases = await provider.nounPhrases(input.image, input.subjects);
  if (phrases.length !== input.subjects.length)
    throw new AugmentationError('MALFORMED_RESPONSE', `the prompt provider gave ${phrases.length} noun phrases for ${input.subjects.length} subjects`);
  const subjects: Subject[] = input.subjects.map((s, i) => ({ ...s, nounPhrase: phrases[i]! }));
  const given = await provider.prompts(phrases, count);
  if (!given.length) throw new AugmentationError('MALFORMED_RESPONSE', 'the prompt provider gave no prompt');
  given.forEach((p) => {
    if (!p.subjects.length || p.subjects.some((i) => !(i >= 0 && i < subjects.length)))
      throw new AugmentationError('MALFORMED_RESPONSE', `prompt ${JSON.stringify(p.text)} names subjects [${p.subjects}] of ${subjects.length}`);
  });
  // fewer distinct prompts than asked: reuse them in turn (each use draws its own seeds, so the images differ)
  const prompts: AugmentationPrompt[] = Array.from({ length: count }, (_, i) => given[i % given.length]!);
  const perExample = prompts.map((_, i) => {
    const r = root.fork(`example-${i}`);
    return { draft: seedOf(r), inpaint: seedOf(r), gsa: seedOf(r), order: r };
  });

  // 3: drafts and their pseudo masks, with one attention-capturing UNet for all drafts
  const unet = run.attentionUnet ?? (await Unet.create(pipeline.bundle, { ...run.runtime, captureAttention: {} }));
  const drafts: Draft[] = [];
  const drawDrafts = async () => {
    for (const [i, p] of prompts.entries()) {
      const [d] = await renderDrafts(pipeline, [{ template: p.text, words: p.subjects.map((k) => phrases[k]!) }], {
        steps: options.draftSteps,
        guidance: options.draftGuidance,
        seed: [perExample[i]!.draft],
        attentionUnet: unet,
        ...(run.negativePrompt !== undefined ? { negativePrompt: run.negativePrompt } : {}),
      });
      drafts.push(d!);
      emit({ stage: 'augment', step: i + 1, total: 2 * count, message: `draft ${i + 1}/${count}` });
    }
  };
  await withCleanup(drawDrafts, () => [!run.attentionUnet && (() => unet.release())]);

  // 4: composition (pasted reference subjects, inpainted holes)
  const threshold = options.pseudoMasks.kind === 'attention' ? options.pseudoMasks.threshold : 0.5;
  const size = pipeline.bundle.sampleSize;
  const out: ComposedSample[] = [];
  for (const [i, p] of prompts.entries()) {
    const d = drafts[i]!;
    const draftMasks = attentionMasks(d.slotMaps, d.height, d.width, size, size, { threshold });
    const order = shuffledRange(p.subjects.length, perExample[i]!.order);
    const pasted = await pasteSubjects({
      draft: d.image,
      draftMasks,
      reference: input.image,
      referenceMasks: p.subjects.map((k) => input.subjects[k]!.mask),
      order,
    });
    const filled = await inpaintHoles(pipeline, pasted, {
      prompt: d.prompt,
      steps: options.draftSteps,
      guidance: options.draftGuidance,
      seed: perExample[i]!.inpaint,
    });
    out.push({
      image: filled.image,
      ...renderings(p, subjects, run.placeholders),
      subjects: [...p.subjects],
      masks: filled.masks,
      category: p.category,
      template: p.text,
      seeds: { draft: perExample[i]!.draft, inpaint: perExample[i]!.inpaint, gsa: perExample[i]!.gsa },
      pasteOrder: order,
    });
    emit({ stage: 'augment', step: count + i + 1, total: 2 * count, message: `compose ${i + 1}/${count}` });
  }
  return out;
}

/**
 * Step 5: GSA of each composed example with its noun prompt and its own seed. The masks stay those of the
 * composition (SDEdit at METHOD.md's strength keeps the layout). Progress events `gsa` after each image.
 */
export async function applyGsa(
  pipeline: DiffusionPipeline,
  composed: readonly ComposedSample[],
  options: Pick<AugmentationOptions, 'gsaStrength' | 'gsaSchedule' | 'gsaSteps' | 'draftGuidance'>,
  run: GsaRunOptions = {},
): Promise<AugmentedSample[]> {
  const emit = run.onProgress ?? (() => {});
  const out: AugmentedSample[] = [];
  for (const [i, c] of composed.entries()) {
    run.signal?.throwIfAborted();
    if (c.seeds?.gsa === undefined)
      throw new AugmentationError('BAD_ARGUMENT', `composed example ${i} has no GSA seed (it was not made by composeAugmentations)`);
    const gsa = await guidedSdeAugmentation(pipeline, c.image, c.nounPrompt, {
      strength: options.gsaStrength,
      schedule: options.gsaSchedule,
      steps: options.gsaSteps,
      guidance: options.draftGuidance,
      seed: c.seeds.gsa,
      ...(run.negativePrompt !== undefined ? { negativePrompt: run.negativePrompt } : {}),
      ...(run.signal ? { onStep: () => run.signal!.throwIfAborted() } : {}),
    });
    out.push({ ...c, image: gsa.image }); // prompts, masks, seeds and paste order are the composition's
    emit({
      stage: 'gsa',
      step: i + 1,
      total: composed.length,
      message: `GSA ${i + 1}/${composed.length} (${gsa.denoisingSteps} of ${gsa.steps} ${gsa.scheduler} steps)`,
    });
  }
  return out;
}
