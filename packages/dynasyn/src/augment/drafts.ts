/**
 * Draft images (METHOD.md augmentation step 3): the base model renders each prompt with noun phrases, and
 * the cross-attention maps of that very sampling are kept. The pipeline's own loop does not return the
 * maps, so the same loop runs here on a UNet with attention capture (its `out_sample` is the plain UNet's,
 * so a draft is the image `pipeline.textToImage` gives for the same seed): same scheduler, the same
 * per-image noise stream (BatchNoise), guidance as diffusers. The maps of the conditional rows are
 * averaged over all denoising steps.
 */
import {
  BatchNoise,
  combineGuided,
  createScheduler,
  doubleBatch,
  Unet,
  usesGuidance,
  type DiffusionPipeline,
  type FloatTensor,
  type RuntimeOptions,
  type SchedulerKind,
} from '@dynasyn/diffusion';
import type { RgbImage } from '../types.js';
import { AugmentationError } from './errors.js';
import { renderPrompt } from './prompt.js';
import { slotTokenPositions, tokenMap } from './pseudo-masks.js';

export interface DraftPrompt {
  /** Template with slots `{k}`. */
  template: string;
  /** The words of the slots (noun phrases: augmentation runs on the base model). */
  words: readonly string[];
}

export interface DraftOptions {
  /** Denoising steps. */
  steps: number;
  /** Classifier-free guidance scale. */
  guidance: number;
  /** Seed of draft 0 (draft i uses seed + i), or one seed per draft. */
  seed: number | readonly number[];
  /** Default 'ddim' (as the pipeline). */
  scheduler?: SchedulerKind;
  negativePrompt?: string;
  /** Sessions for the attention-capturing UNet when none is passed. */
  runtime?: RuntimeOptions;
  /** A UNet created with `captureAttention` to reuse (the caller releases it); default: one is created and released. */
  attentionUnet?: Unet;
  /** Called after each denoising step of each draft. */
  onStep?: (draft: number, step: number, total: number) => void;
}

export interface Draft {
  /** The prompt the base model saw (noun phrases in the slots). */
  prompt: string;
  image: RgbImage;
  seed: number;
  /** Final latents [1,C,h,w]. */
  latents: FloatTensor;
  /** Attention grid (latent/4). */
  height: number;
  width: number;
  /** Per slot: token positions of its words, and the mean attention map [h*w] of those tokens over all steps. */
  slotTokens: number[][];
  slotMaps: Float32Array[];
}

export async function renderDrafts(pipeline: DiffusionPipeline, prompts: readonly DraftPrompt[], options: DraftOptions): Promise<Draft[]> {
  const seeds = typeof options.seed === 'number' ? prompts.map((_, i) => (options.seed as number) + i) : [...options.seed];
  if (seeds.length !== prompts.length) throw new AugmentationError('BAD_ARGUMENT', `${seeds.length} seeds for ${prompts.length} draft prompts`);
  const unet = options.attentionUnet ?? (await Unet.create(pipeline.bundle, { ...options.runtime, captureAttention: {} }));
  try {
    const out: Draft[] = [];
    for (const [i, p] of prompts.entries()) out.push(await renderOne(pipeline, unet, p, seeds[i]!, options, (s, t) => options.onStep?.(i, s, t)));
    return out;
  } finally {
    if (!options.attentionUnet) await unet.release();
  }
}

async function renderOne(
  pipeline: DiffusionPipeline,
  unet: Unet,
  p: DraftPrompt,
  seed: number,
  o: DraftOptions,
  onStep: (s: number, t: number) => void,
): Promise<Draft> {
  const bundle = pipeline.bundle;
  const prompt = renderPrompt(p.template, p.words);
  const scheduler = createScheduler(o.scheduler ?? 'ddim', bundle.scheduler);
  scheduler.setTimesteps(o.steps);
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  const dims = [1, bundle.latentChannels, side, side];
  const noise = new BatchNoise([seed], bundle.latentChannels * side * side);
  let latents = noise.draw();
  for (let k = 0; k < latents.length; k++) latents[k]! *= scheduler.initNoiseSigma;
  const cfg = usesGuidance(o.guidance);
  const hidden = await pipeline.encodePrompts([prompt], o.negativePrompt ?? '', o.guidance);

  let sum: Float32Array | undefined;
  let grid = { height: 0, width: 0, keys: 0 };
  const timesteps = scheduler.timesteps;
  for (const [k, t] of timesteps.entries()) {
    const input: FloatTensor = { dims, data: scheduler.scaleModelInput(latents, t) };
    const { noise: raw, attention } = await unet.predict(cfg ? doubleBatch(input) : input, t, hidden);
    if (!attention) throw new AugmentationError('BAD_ARGUMENT', 'the UNet passed as attentionUnet was created without captureAttention');
    // [B, h*w, keys]; under guidance the conditional row is the second
    const [rows = 1, cells = 0, keys = 0] = attention.probs.dims;
    const cond = attention.probs.data.subarray((rows - 1) * cells * keys, rows * cells * keys);
    sum ??= new Float32Array(cells * keys);
    for (let c = 0; c < sum.length; c++) sum[c]! += cond[c]!;
    grid = { height: attention.height, width: attention.width, keys };
    const pred = cfg ? combineGuided(raw, o.guidance) : raw;
    latents = scheduler.step(pred.data, t, latents, () => noise.draw());
    onStep(k + 1, timesteps.length);
  }
  const mean = sum!.map((v) => v / timesteps.length);
  const final: FloatTensor = { dims, data: latents };
  const [image] = await pipeline.decodeLatents(final);
  const slotTokens = slotTokenPositions(pipeline.tokenizer, p.template, p.words, grid.keys || bundle.maxTokens);
  slotTokens.forEach((tokens, k) => {
    if (!tokens.length)
      throw new AugmentationError(
        'BAD_ARGUMENT',
        `subject words ${JSON.stringify(p.words[k])} fall outside the ${bundle.maxTokens} tokens of ${JSON.stringify(prompt)} (shorten the prompt)`,
      );
  });
  const cells = grid.height * grid.width;
  return {
    prompt,
    image: image!,
    seed,
    latents: final,
    height: grid.height,
    width: grid.width,
    slotTokens,
    slotMaps: slotTokens.map((tokens) => tokenMap(mean, cells, grid.keys, tokens)),
  };
}
