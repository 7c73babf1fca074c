/**
 * CLIP-T and CLIP-I (METHOD.md "Sampling and evaluation"): CLIP-T is the cosine of a sample's image
 * embedding with the embedding of its prompt with class words in place of placeholders; CLIP-I the mean,
 * over the subjects whose placeholder appears in the prompt, of the cosine with the reference subject's
 * crop (the reference cut to its mask's bounding box). Means per prompt category (plain / action /
 * interaction) and overall. With a toy-world judge also identity acc., attributes kept and prompt acc. per sample
 * (evaluate/judge.ts), against the reference identities the judge reads inside the masks.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { boundingBox, crop, decode } from '@dynasyn/imaging';
import { judgeSamples, type JudgeScores, type ToyworldJudge } from '../evaluate/judge.js';
import type { SubjectIdentity } from '../evaluate/scenes.js';
import type { Mask, RgbImage } from '../types.js';
import { cosine, type ClipModel } from './clip.js';
import { ArtifactError } from './errors.js';
import { readInputs, readSamples, writeSampleMetrics, type SampleMetrics } from './images.js';
import { readManifest } from './manifest.js';
import { MetricsRecorder, type CategoryScores, type EvaluationSummary } from './metrics.js';

export interface EvaluationInput {
  /** The reference image and one mask per subject (same size). */
  reference: RgbImage;
  masks: readonly Mask[];
  /** Placeholder token of each subject (`<asset0>`), to find the subjects a prompt names. */
  tokens: readonly string[];
  samples: readonly { image: RgbImage; prompt: string; classPrompt: string; category: string }[];
}

/** A loaded toy-world judge and its folder (the summary names it). */
export interface EvaluationJudge {
  model: string;
  judge: ToyworldJudge;
}

export interface Evaluation {
  perSample: SampleMetrics[];
  summary: EvaluationSummary;
}

/** The reference cut to each mask's bounding box (what CLIP-I compares samples with). */
export function referenceCrops(reference: RgbImage, masks: readonly Mask[]): RgbImage[] {
  return masks.map((m, i) => {
    const box = boundingBox(m);
    if (!box) throw new ArtifactError('BAD_ARTIFACT', `mask of subject ${i} is empty: no reference crop for CLIP-I`);
    return crop(reference, box);
  });
}

/** Subjects whose placeholder occurs in `prompt`, in subject order. */
export const subjectsInPrompt = (prompt: string, tokens: readonly string[]): number[] => tokens.flatMap((t, i) => (prompt.includes(t) ? [i] : []));

export async function evaluateSamples(clip: ClipModel, input: EvaluationInput, judge?: EvaluationJudge): Promise<Evaluation> {
  const refs = await clip.embedImages(referenceCrops(input.reference, input.masks));
  const images = await clip.embedImages(input.samples.map((s) => s.image));
  const texts = await clip.embedTexts(input.samples.map((s) => s.classPrompt));
  let judged: { identities?: SubjectIdentity[]; scores: JudgeScores[] } | undefined;
  if (judge) {
    const identities = judge.judge.identify ? await judge.judge.identify(input.reference, input.masks) : undefined;
    judged = { ...(identities ? { identities } : {}), scores: await judgeSamples(judge.judge, input.samples, identities) };
  }
  const perSample = input.samples.map((s, k): SampleMetrics => {
    const present = subjectsInPrompt(s.prompt, input.tokens);
    const clipI = present.length ? present.reduce((a, i) => a + cosine(images[k]!, refs[i]!), 0) / present.length : null;
    return { clipT: cosine(images[k]!, texts[k]!), clipI, ...judged?.scores[k] };
  });
  const summary = summarize(
    clip.dir,
    input.samples.map((s) => s.category),
    perSample,
    judged !== undefined,
  );
  if (judge) summary.judge = { model: judge.model, ...(judged?.identities ? { identities: judged.identities } : {}) };
  return { perSample, summary };
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

/** The mean of a metric over the samples `idx` it applies to (null values left out); null when none. */
const meanOf = (metrics: SampleMetrics[], idx: number[], key: 'clipI' | 'identity' | 'attributes' | 'prompt') =>
  mean(idx.flatMap((i) => (typeof metrics[i]![key] === 'number' ? [metrics[i]![key]] : [])));

function summarize(model: string, categories: string[], metrics: SampleMetrics[], withJudge: boolean): EvaluationSummary {
  const group = (idx: number[]): CategoryScores => ({
    count: idx.length,
    clipT: mean(idx.map((i) => metrics[i]!.clipT)) ?? Number.NaN,
    clipI: meanOf(metrics, idx, 'clipI'),
    ...(withJudge
      ? { identity: meanOf(metrics, idx, 'identity'), attributes: meanOf(metrics, idx, 'attributes'), prompt: meanOf(metrics, idx, 'prompt') }
      : {}),
  });
  const byCategory: EvaluationSummary['byCategory'] = {};
  for (const c of [...new Set(categories)].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b))) {
    byCategory[c] = group(categories.flatMap((x, i) => (x === c ? [i] : [])));
  }
  return { model, byCategory, overall: group(metrics.map((_, i) => i)) };
}
const ORDER = ['plain', 'action', 'interaction'];

/**
 * Evaluates the samples of an output directory in place: per-sample metrics into samples.json, the
 * summary into metrics.json. Returns the summary. `judge`: the toy-world judge's scores too.
 */
export async function evaluateOutputDir(dir: string, clip: ClipModel, judge?: EvaluationJudge): Promise<EvaluationSummary> {
  const manifest = readManifest(dir);
  const { image, masks } = await readInputs(dir);
  if (masks.length !== manifest.tokens.length)
    throw new ArtifactError('ARTIFACT_MISMATCH', `${dir}: ${masks.length} input masks for ${manifest.tokens.length} placeholders`);
  const entries = readSamples(dir);
  const samples = [];
  for (const e of entries) samples.push({ ...e, image: await decode(await readFile(join(dir, e.file))) });
  const { perSample, summary } = await evaluateSamples(clip, { reference: image, masks, tokens: manifest.tokens, samples }, judge);
  writeSampleMetrics(dir, perSample);
  const rec = MetricsRecorder.open(dir);
  rec.setEvaluation(summary);
  rec.flush();
  return summary;
}
