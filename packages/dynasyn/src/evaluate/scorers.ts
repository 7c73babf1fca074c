/**
 * Scorers: each turns one run's samples into numbers per sample (null where a metric does not apply). CLIP-T /
 * CLIP-I (output/evaluate.ts) always run; the toy-world judge runs when the protocol names it. A scorer is a
 * small interface, so another judge (ImageReward, a user study import) plugs in the same way.
 */
import type { Mask, RgbImage } from '../types.js';
import { ClipModel, type ClipModelOptions } from '../output/clip.js';
import { evaluateSamples } from '../output/evaluate.js';
import { placeholderToken } from '../train/union.js';
import { EvaluationError } from './errors.js';
import type { Category } from './protocol.js';
import type { ResolvedScene, SubjectIdentity } from './scenes.js';

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

/** What a prompt asks for beyond identities (toyworld parseCaption's fields). */
export interface AskedLabels {
  /** Per subject named by the prompt, in prompt order: the asked action, if any. */
  subjects: { subject: number; action?: string }[];
  interaction?: string;
  context?: string;
  style?: string;
}

/** What the judge saw in one sample for the subjects the prompt names (null: subject not found). */
export interface JudgedSample {
  subjects: ({ class: string; colour: string; pattern: string; accessory: string; action?: string } | null)[];
  /** How the first named subject relates to the second (when the prompt names two). */
  interaction?: string | null;
  context?: string | null;
  style?: string | null;
}

const IDENTITY_KEYS = ['class', 'colour', 'pattern', 'accessory'] as const;

/** Per subject the prompt names, how many of its four identity attributes the judge finds as in the reference (0 when not found). */
function attributesPerSubject(asked: AskedLabels, judged: JudgedSample, identities: readonly SubjectIdentity[]): number[] {
  return asked.subjects.map((s, k) => {
    const want = identities[s.subject];
    const got = judged.subjects[k];
    return want && got ? IDENTITY_KEYS.filter((key) => got[key] === want[key]).length : 0;
  });
}

/** Identity accuracy of one sample: the share of named subjects whose four identity attributes all match (null with none named). */
export function identityAccuracy(asked: AskedLabels, judged: JudgedSample, identities: readonly SubjectIdentity[]): number | null {
  const kept = attributesPerSubject(asked, judged, identities);
  return kept.length ? kept.filter((n) => n === IDENTITY_KEYS.length).length / kept.length : null;
}

/** The share of the named subjects' identity attributes the judge finds as in the reference (a subject not found keeps none; null with none named). */
export function attributesKept(asked: AskedLabels, judged: JudgedSample, identities: readonly SubjectIdentity[]): number | null {
  const kept = attributesPerSubject(asked, judged, identities);
  return kept.length ? kept.reduce((a, b) => a + b, 0) / (IDENTITY_KEYS.length * kept.length) : null;
}

/** Prompt accuracy of one sample: 1 when every asked action, interaction, context and style is judged so, else 0 (null: nothing asked). */
export function promptAccuracy(asked: AskedLabels, judged: JudgedSample): number | null {
  const checks: boolean[] = [];
  asked.subjects.forEach((s, k) => {
    if (s.action !== undefined) checks.push(judged.subjects[k]?.action === s.action);
  });
  if (asked.interaction !== undefined) checks.push(judged.interaction === asked.interaction);
  if (asked.context !== undefined) checks.push(judged.context === asked.context);
  if (asked.style !== undefined) checks.push(judged.style === asked.style);
  return checks.length ? (checks.every(Boolean) ? 1 : 0) : null;
}

/**
 * The seam for packages/toyworld-judge: a judge that, given a sample and what its prompt names, says what it
 * sees. The adapter from the judge package's own API to this is `loadToyworldJudge` below.
 */
export interface ToyworldJudge {
  /** Reads the prompt (class words in place of placeholders) into what it asks: toyworld's parseCaption. */
  asked(classPrompt: string, prompt: string): AskedLabels;
  judge(image: RgbImage, asked: AskedLabels): Promise<JudgedSample>;
  release?(): Promise<void>;
}

/** Identity and prompt accuracy from a ToyworldJudge; scenes without identities (file scenes) score null identity. */
export function createJudgeScorer(judge: ToyworldJudge): Scorer {
  return {
    name: 'toyworld-judge',
    metrics: JUDGE_METRICS,
    async score(samples, ctx) {
      const out: Record<string, number | null>[] = [];
      for (const s of samples) {
        const asked = judge.asked(s.classPrompt, s.prompt);
        const judged = await judge.judge(s.image, asked);
        out.push({
          identity: ctx.scene.identities ? identityAccuracy(asked, judged, ctx.scene.identities) : null,
          attributes: ctx.scene.identities ? attributesKept(asked, judged, ctx.scene.identities) : null,
          prompt: promptAccuracy(asked, judged),
        });
      }
      return out;
    },
    ...(judge.release ? { release: () => judge.release!() } : {}),
  };
}

/**
 * Loads packages/toyworld-judge's model from `modelDir` as a ToyworldJudge. The package had not landed when
 * this was written: until it exports `loadJudgeForEvaluation(modelDir)` (returning a ToyworldJudge), this
 * fails with SCORER_UNAVAILABLE naming what is missing.
 */
export async function loadToyworldJudge(modelDir: string): Promise<ToyworldJudge> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import('@dynasyn/toyworld-judge' as string)) as Record<string, unknown>;
  } catch (e) {
    throw new EvaluationError('SCORER_UNAVAILABLE', 'the toyworld-judge scorer needs @dynasyn/toyworld-judge, which is not installed or not built', {
      cause: e,
    });
  }
  const load = mod.loadJudgeForEvaluation;
  if (typeof load !== 'function')
    throw new EvaluationError('SCORER_UNAVAILABLE', '@dynasyn/toyworld-judge does not export loadJudgeForEvaluation(modelDir) yet (the seam evaluate expects)');
  return (await (load as (dir: string) => Promise<ToyworldJudge>)(modelDir)) as ToyworldJudge;
}
