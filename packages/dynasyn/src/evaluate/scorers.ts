/**
 * Scorers: each turns one run's samples into numbers per sample (null where a metric does not apply). CLIP-T /
 * CLIP-I (output/evaluate.ts) always run; the toy-world judge runs when the protocol names it. A scorer is a
 * small interface, so another judge (ImageReward, a user study import) plugs in the same way.
 */
import type { Mask, RgbImage } from '../types.js';
import { ClipModel, type ClipModelOptions } from '../output/clip.js';
import { evaluateSamples } from '../output/evaluate.js';
import { folderFingerprint } from '../output/manifest.js';
import { placeholderToken } from '../train/union.js';
import { judgeSamples, type ToyworldJudge } from './judge.js';
import type { Category } from './protocol.js';
import type { ResolvedScene } from './scenes.js';

/** One generated sample to score. */
export interface ScoredSample {
  image: RgbImage;
  /** With placeholders (`<asset0> jumping`). */
  prompt: string;
  /** With class words (`cat jumping`). */
  classPrompt: string;
  category: Category;
  seed: number;
}

/** The run the samples come from: the reference (at the backbone's size) and its scene. */
export interface ScoringContext {
  scene: ResolvedScene;
  reference: RgbImage;
  masks: readonly Mask[];
}

export interface MetricInfo {
  /** Key in the results (`clipT`). */
  key: string;
  /** Column title (`CLIP-T`). */
  label: string;
  /** One line for the docs and the report. */
  about: string;
}

export interface Scorer {
  name: string;
  metrics: readonly MetricInfo[];
  /** One record per sample, keyed by metric key; null: the metric does not apply to that sample. */
  score(samples: readonly ScoredSample[], ctx: ScoringContext): Promise<Record<string, number | null>[]>;
  release?(): Promise<void>;
  /**
   * Which model the scores come from (output/manifest.ts `folderFingerprint` of its folder). A finished run scored by
   * another version of a scorer is scored again from its samples (nothing trains again).
   */
  version?: string;
}

export const CLIP_METRICS: readonly MetricInfo[] = [
  { key: 'clipT', label: 'CLIP-T', about: 'cosine of the image embedding with the prompt with class words in place of placeholders' },
  {
    key: 'clipI',
    label: 'CLIP-I',
    about: "mean over the subjects the prompt names of the cosine with the reference cut to that subject's mask box",
  },
];

/** CLIP-T and CLIP-I with one loaded CLIP model (output/evaluate.ts evaluateSamples). */
export async function createClipScorer(dir: string, runtime: ClipModelOptions = {}): Promise<Scorer> {
  const clip = await ClipModel.load(dir, runtime);
  return {
    name: 'clip',
    version: folderFingerprint(dir),
    metrics: CLIP_METRICS,
    async score(samples, ctx) {
      const tokens = ctx.masks.map((_, i) => placeholderToken(i));
      const { perSample } = await evaluateSamples(clip, { reference: ctx.reference, masks: ctx.masks, tokens, samples });
      return perSample.map((m) => ({ clipT: m.clipT, clipI: m.clipI }));
    },
    release: () => clip.release(),
  };
}

// ---- the toy-world judge -------------------------------------------------------------------------------

export const JUDGE_METRICS: readonly MetricInfo[] = [
  {
    key: 'identity',
    label: 'identity acc.',
    about: 'share of the subjects the prompt names that the judge finds with class, colour, pattern and accessory all as in the reference',
  },
  {
    key: 'attributes',
    label: 'attributes kept',
    about:
      'share of the four identity attributes (class, colour, pattern, accessory) the judge finds as in the reference, over the subjects the prompt names (partial credit where identity acc. gives none)',
  },
  {
    key: 'prompt',
    label: 'prompt acc.',
    about: 'share of samples where everything the prompt asks (action, interaction, context, style) is what the judge sees',
  },
];

/**
 * Identity and prompt accuracy from a ToyworldJudge; scenes without identities (file scenes) score null identity.
 * `modelDir`: the judge's folder, whose fingerprint is the scorer's version.
 */
export function createJudgeScorer(judge: ToyworldJudge, modelDir?: string): Scorer {
  return {
    name: 'toyworld-judge',
    ...(modelDir !== undefined ? { version: folderFingerprint(modelDir) } : {}),
    metrics: JUDGE_METRICS,
    async score(samples, ctx) {
      const scores = await judgeSamples(judge, samples, ctx.scene.identities);
      return scores.map((s) => ({ ...s }));
    },
    ...(judge.release ? { release: () => judge.release!() } : {}),
  };
}
