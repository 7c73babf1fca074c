/**
 * The toy-world judge as the evaluation uses it (packages/toyworld-judge through `loadToyworldJudge`): what a
 * prompt asks, what the judge sees in a sample, and the per-sample scores identity acc., attributes kept and
 * prompt acc. (JUDGE_METRICS, scorers.ts) against the reference subjects' identities. `dynasyn evaluate` takes
 * the identities from its toy-world scene specs; a personalization's own evaluation (output/evaluate.ts) has the
 * judge read them from the reference inside the masks (`identify`).
 */
import type { Mask, RgbImage } from '../types.js';
import { EvaluationError } from './errors.js';
import type { SubjectIdentity } from './scenes.js';

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
  /**
   * Each reference subject's identity as the judge reads it inside the subject's mask: what identity accuracy is
   * measured against when no scene spec gives it (the service and `dynasyn personalize --judge`). Optional: a
   * judge without it scores identity null there.
   */
  identify?(reference: RgbImage, masks: readonly Mask[]): Promise<SubjectIdentity[]>;
  release?(): Promise<void>;
}

/** One sample's judge scores (JUDGE_METRICS' keys); null where a metric does not apply. */
export interface JudgeScores {
  identity: number | null;
  attributes: number | null;
  prompt: number | null;
}

/**
 * The judge's scores of samples against reference `identities` (undefined: identity and attributes null). A prompt
 * without a placeholder names no subject to keep: its identity and attributes are null (its prompt acc. is scored).
 */
export async function judgeSamples(
  judge: ToyworldJudge,
  samples: readonly { image: RgbImage; prompt: string; classPrompt: string }[],
  identities: readonly SubjectIdentity[] | undefined,
): Promise<JudgeScores[]> {
  const out: JudgeScores[] = [];
  for (const s of samples) {
    const asked = judge.asked(s.classPrompt, s.prompt);
    const judged = await judge.judge(s.image, asked);
    const named = identities !== undefined && /<asset\d+>/.test(s.prompt);
    out.push({
      identity: named ? identityAccuracy(asked, judged, identities) : null,
      attributes: named ? attributesKept(asked, judged, identities) : null,
      prompt: promptAccuracy(asked, judged),
    });
  }
  return out;
}

/**
 * Loads packages/toyworld-judge's model from `modelDir` as a ToyworldJudge (its `loadJudgeForEvaluation`),
 * imported at run time so the method does not depend on the toy world. A missing package or export fails with
 * SCORER_UNAVAILABLE naming what is missing.
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
