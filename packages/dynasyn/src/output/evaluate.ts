/**
 * CLIP-T and CLIP-I (METHOD.md "Sampling and evaluation"): CLIP-T is the cosine of a sample's image
 * embedding with the embedding of its prompt with class words in place of placeholders; CLIP-I the mean,
 * over the subjects whose placeholder appears in the prompt, of the cosine with the reference subject's
 * crop (the reference cut to its mask's bounding box). Means per prompt category (plain / action /
 * interaction) and overall.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { boundingBox, crop, decode } from '@dynasyn/imaging';
import type { Mask, RgbImage } from '../types.js';
import { cosine, type ClipModel } from './clip.js';
import { ArtifactError } from './errors.js';
import { readInputs, readSamples, writeSampleMetrics, type SampleMetrics } from './images.js';
import { readManifest } from './manifest.js';
import { MetricsRecorder, type EvaluationSummary } from './metrics.js';

export interface EvaluationInput {
  /** The reference image and one mask per subject (same size). */
  reference: RgbImage;
  masks: readonly Mask[];
  /** Placeholder token of each subject (`<asset0>`), to find the subjects a prompt names. */
  tokens: readonly string[];
  samples: readonly { image: RgbImage; prompt: string; classPrompt: string; category: string }[];
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

export async function evaluateSamples(clip: ClipModel, input: EvaluationInput): Promise<Evaluation> {
  const refs = await clip.embedImages(referenceCrops(input.reference, input.masks));
  const images = await clip.embedImages(input.samples.map((s) => s.image));
  const texts = await clip.embedTexts(input.samples.map((s) => s.classPrompt));
  const perSample = input.samples.map((s, k): SampleMetrics => {
    const present = subjectsInPrompt(s.prompt, input.tokens);
    const clipI = present.length ? present.reduce((a, i) => a + cosine(images[k]!, refs[i]!), 0) / present.length : null;
    return { clipT: cosine(images[k]!, texts[k]!), clipI };
  });
  return {
    perSample,
    summary: summarize(
      clip.dir,
      input.samples.map((s) => s.category),
      perSample,
    ),
  };
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

function summarize(model: string, categories: string[], metrics: SampleMetrics[]): EvaluationSummary {
  const group = (idx: number[]) => ({
    count: idx.length,
    clipT: mean(idx.map((i) => metrics[i]!.clipT)) ?? Number.NaN,
    clipI: mean(idx.flatMap((i) => (metrics[i]!.clipI === null ? [] : [metrics[i]!.clipI!]))),
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
 * summary into metrics.json. Returns the summary.
 */
export async function evaluateOutputDir(dir: string, clip: ClipModel): Promise<EvaluationSummary> {
  const manifest = readManifest(dir);
  const { image, masks } = await readInputs(dir);
  if (masks.length !== manifest.tokens.length)
    throw new ArtifactError('ARTIFACT_MISMATCH', `${dir}: ${masks.length} input masks for ${manifest.tokens.length} placeholders`);
  const entries = readSamples(dir);
  const samples = [];
  for (const e of entries) samples.push({ ...e, image: await decode(await readFile(join(dir, e.file))) });
  const { perSample, summary } = await evaluateSamples(clip, { reference: image, masks, tokens: manifest.tokens, samples });
  writeSampleMetrics(dir, perSample);
  const rec = MetricsRecorder.open(dir);
  rec.setEvaluation(summary);
  rec.flush();
  return summary;
}
