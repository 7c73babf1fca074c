/**
 * Sampling with learned concepts (METHOD.md "Sampling and evaluation"): prompts with `<assetN>`, the
 * placeholder rows fed to the text encoder, adapters merged into the models (merge-adapters.ts),
 * classifier-free guidance, one recorded seed per image, a category per prompt.
 */
import { DiffusionPipeline, loadBundle, type ModelBundle, type RuntimeOptions } from '@dynasyn/diffusion';
import { InputError } from './input-error.js';
import { checkPrompt } from './inputs.js';
import { bundleWithAdapters } from './merge-adapters.js';
import type { AugmentedExample, LearnedConcepts, RgbImage, SampleSettings } from './types.js';

type PromptCategory = AugmentedExample['category'];

export interface SamplePrompt {
  prompt: string;
  category: PromptCategory;
}

export interface SampleRecord extends SamplePrompt {
  /** The prompt with class words in place of placeholders (what CLIP-T compares the image with). */
  classPrompt: string;
  seed: number;
  image: RgbImage;
}

const placeholder = (i: number) => `<asset${i}>`;

/** Built-in prompts per category, `{i}` / `{j}` standing for two distinct placeholders. */
const BUILTIN: Record<PromptCategory, string[]> = {
  plain: ['a photo of {all}', 'a picture of {all} on the grass', 'a watercolor painting of {all}'],
  action: ['a photo of {i} floating in the water', 'a photo of {i} jumping on the beach', 'a photo of {i} sitting in the snow'],
  interaction: ['a photo of {i} next to {j} on a table', 'a photo of {i} behind {j} in a garden', 'a photo of {i} on top of {j}'],
};

/**
 * `count` prompts for `n` subjects cycling plain -> interaction -> action (interaction needs two subjects),
 * rotating which placeholders appear so every subject is sampled.
 */
export function defaultSamplePrompts(n: number, count: number): SamplePrompt[] {
  if (!Number.isInteger(n) || n < 1) throw new InputError('BAD_OPTION', `need at least one subject for sample prompts, got ${n}`);
  const order: PromptCategory[] = n > 1 ? ['plain', 'interaction', 'action'] : ['plain', 'action'];
  const all = Array.from({ length: n }, (_, i) => placeholder(i)).join(' and ');
  const out: SamplePrompt[] = [];
  for (let k = 0; k < count; k++) {
    const category = order[k % order.length]!;
    const round = Math.floor(k / order.length);
    const templates = BUILTIN[category];
    const i = round % n;
    const prompt = templates[round % templates.length]!.replace('{all}', all)
      .replace('{i}', placeholder(i))
      .replace('{j}', placeholder((i + 1) % n));
    out.push({ prompt, category });
  }
  return out;
}

/**
 * interaction: two or more distinct placeholders related by a verb or a preposition; action: a verb in
 * -ing; plain: the subjects in a scene (the paper's appendix categories, as a heuristic for user prompts).
 */
export function categorizePrompt(prompt: string): PromptCategory {
  const distinct = new Set(prompt.match(/<asset\d+>/g) ?? []);
  const text = prompt.replace(/<asset\d+>/g, ' ');
  const acting = /\b\w{2,}ing\b/i.test(text);
  if (distinct.size >= 2 && (acting || /\b(next to|behind|on top of|with|beside|near|under|inside|in front of)\b/i.test(text))) return 'interaction';
  return acting ? 'action' : 'plain';
}

/**
 * Prompts from a text file: one per line, `#` comments and blank lines skipped, an optional
 * `plain:` / `action:` / `interaction:` prefix (else the category is inferred by categorizePrompt).
 * Placeholders must name existing subjects.
 */
export function parsePromptFile(text: string, subjects: number): SamplePrompt[] {
  const out: SamplePrompt[] = [];
  text.split(/\r?\n/).forEach((raw, line) => {
    const s = raw.trim();
    if (!s || s.startsWith('#')) return;
    const m = /^(plain|action|interaction)\s*:\s*(.+)$/i.exec(s);
    const prompt = m ? m[2]!.trim() : s;
    checkPrompt(prompt, subjects, `prompts line ${line + 1}`);
    out.push({ prompt, category: m ? (m[1]!.toLowerCase() as PromptCategory) : categorizePrompt(prompt) });
  });
  if (!out.length) throw new InputError('BAD_OPTION', 'the prompts file has no prompt (one per line, # for comments)');
  return out;
}

/** The prompt with each `<assetI>` replaced by its class word (c_hat in METHOD.md). */
export function toClassPrompt(prompt: string, classWords: readonly string[]): string {
  return prompt.replace(/<asset(\d+)>/g, (all, i: string) => classWords[Number(i)] ?? all);
}

export interface PersonalizedPipelineOptions extends RuntimeOptions {
  /** Where merged adapter models and rewritten encoders go (the run's cache folder). */
  cacheDir: string;
}

/** A pipeline that knows the placeholders of `concepts` and runs with their adapters merged in. */
export async function createPersonalizedPipeline(
  backbone: string | ModelBundle,
  concepts: LearnedConcepts,
  options: PersonalizedPipelineOptions,
): Promise<DiffusionPipeline> {
  const bundle = typeof backbone === 'string' ? loadBundle(backbone) : backbone;
  const merged = bundleWithAdapters(bundle, concepts, `${options.cacheDir}/merged`);
  return DiffusionPipeline.create(merged, {
    placeholderTokens: concepts.tokens,
    ...(concepts.placeholderVectors ? { placeholderVectors: concepts.placeholderVectors } : {}),
    cacheDir: `${options.cacheDir}/pipeline`,
    ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
    ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
  });
}

export interface SampleRunOptions {
  /** Seed of prompt i when settings.seeds is absent: seed + i. */
  seed: number;
  /** Called after each denoising step of each image (done, total over all images). */
  onProgress?: (step: number, total: number) => void;
  signal?: AbortSignal;
}

/** One image per prompt (batch 1, so memory stays flat), with its seed recorded. */
export async function sampleConcepts(
  pipeline: DiffusionPipeline,
  concepts: LearnedConcepts,
  prompts: readonly SamplePrompt[],
  settings: Omit<SampleSettings, 'prompts'>,
  run: SampleRunOptions,
): Promise<SampleRecord[]> {
  if (settings.seeds && settings.seeds.length !== prompts.length)
    throw new InputError('BAD_OPTION', `${settings.seeds.length} seeds for ${prompts.length} prompts`);
  const embeddings = concepts.embeddings.data;
  if (!(embeddings instanceof Float32Array)) throw new InputError('BAD_OPTION', 'placeholder embeddings must be float32');
  const out: SampleRecord[] = [];
  const total = prompts.length * settings.steps;
  for (const [i, p] of prompts.entries()) {
    run.signal?.throwIfAborted();
    checkPrompt(p.prompt, concepts.tokens.length);
    const seed = settings.seeds?.[i] ?? (run.seed + i) % 2 ** 32;
    const res = await pipeline.textToImage({
      prompt: p.prompt,
      steps: settings.steps,
      guidance: settings.guidance,
      scheduler: settings.scheduler,
      seed,
      placeholderEmbeddings: embeddings,
      ...(run.onProgress ? { onProgress: (step: number) => run.onProgress!(i * settings.steps + step, total) } : {}),
    });
    out.push({ ...p, classPrompt: toClassPrompt(p.prompt, concepts.classWords), seed: res.seeds[0]!, image: res.images[0]! });
  }
  return out;
}
