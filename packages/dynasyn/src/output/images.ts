/**
 * The image artifacts of an output directory: the reference and its masks (input/), samples (samples/ +
 * samples.json), attention heatmaps (attention/), and a reader of the augmented set's index (written by
 * augment/storage.ts) for the report.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeMask, heatmapOverlay, maskToImage, readImage, writePng } from '@dynasyn/imaging';
import { readFile } from 'node:fs/promises';
import type { AugmentedExample, Mask, RgbImage, SampleSettings } from '../types.js';
import { ArtifactError } from './errors.js';
import { readJsonObject, writeJsonAtomic } from './json-file.js';
import { ARTIFACTS, artifactPath, attentionHeatmapPath, inputMaskPath, referencePath, sampleFileName } from './layout.js';

/** The reference image and subject masks, as training saw them (fitted to the backbone size). */
export async function writeInputs(dir: string, image: RgbImage, masks: readonly Mask[]): Promise<void> {
  mkdirSync(join(dir, ARTIFACTS.input), { recursive: true });
  await writePng(referencePath(dir), image);
  for (const [i, m] of masks.entries()) await writePng(inputMaskPath(dir, i), maskToImage(m));
}

/** What writeInputs wrote; `masks` has as many entries as mask files numbered from 0 without gaps. */
export async function readInputs(dir: string): Promise<{ image: RgbImage; masks: Mask[] }> {
  const ref = referencePath(dir);
  if (!existsSync(ref)) throw new ArtifactError('MISSING_ARTIFACT', `reference image ${ref} does not exist`);
  const image = await readImage(ref);
  const masks: Mask[] = [];
  for (let i = 0; existsSync(inputMaskPath(dir, i)); i++) masks.push(await decodeMask(await readFile(inputMaskPath(dir, i))));
  return { image, masks };
}

type PromptCategory = AugmentedExample['category'];

/** CLIP scores of one sample (CLIP-I null when no subject appears in its prompt), and the judge's when there is one. */
export interface SampleMetrics {
  clipT: number;
  clipI: number | null;
  /** With a toy-world judge (evaluate/judge.ts): identity acc. (null when the prompt names no subject); absent without one. */
  identity?: number | null;
  /** With a toy-world judge: attributes kept (null when the prompt names no subject). */
  attributes?: number | null;
  /** With a toy-world judge: prompt acc. (null when the prompt asks nothing the judge reads). */
  prompt?: number | null;
}

/** One entry of samples.json. */
export interface SampleEntry {
  prompt: string;
  /** The prompt with class words in place of placeholders. */
  classPrompt: string;
  seed: number;
  steps: number;
  guidance: number;
  scheduler: SampleSettings['scheduler'];
  category: PromptCategory;
  /** Path of the PNG relative to the output directory (`samples/000.png`). */
  file: string;
  metrics?: SampleMetrics;
}

/** A generated sample (what sampling returns), before it is written. */
export interface GeneratedSample {
  prompt: string;
  classPrompt: string;
  category: PromptCategory;
  seed: number;
  image: RgbImage;
  metrics?: SampleMetrics;
}

/** Writes samples/NNN.png and samples.json (replacing earlier samples' index). */
export async function writeSamples(
  dir: string,
  samples: readonly GeneratedSample[],
  settings: Pick<SampleSettings, 'steps' | 'guidance' | 'scheduler'>,
): Promise<SampleEntry[]> {
  mkdirSync(join(dir, ARTIFACTS.samples), { recursive: true });
  const entries: SampleEntry[] = [];
  for (const [i, s] of samples.entries()) {
    const file = sampleFileName(i);
    await writePng(join(dir, file), s.image);
    entries.push({
      prompt: s.prompt,
      classPrompt: s.classPrompt,
      seed: s.seed,
      steps: settings.steps,
      guidance: settings.guidance,
      scheduler: settings.scheduler,
      category: s.category,
      file,
      ...(s.metrics ? { metrics: s.metrics } : {}),
    });
  }
  writeJsonAtomic(artifactPath(dir, 'samplesIndex'), { samples: entries });
  return entries;
}

/** samples.json's entries; [] when there is none yet. */
export function readSamples(dir: string): SampleEntry[] {
  const file = artifactPath(dir, 'samplesIndex');
  if (!existsSync(file)) return [];
  const v = readJsonObject(file, 'samples index')['samples'];
  if (!Array.isArray(v)) throw new ArtifactError('BAD_ARTIFACT', `samples index ${file} must have a "samples" array`);
  for (const [i, e] of (v as SampleEntry[]).entries()) {
    if (!e || typeof e.prompt !== 'string' || typeof e.file !== 'string')
      throw new ArtifactError('BAD_ARTIFACT', `samples index ${file}: entry ${i} lacks prompt or file`);
  }
  return v as SampleEntry[];
}

/** Rewrites samples.json with per-sample metrics (same order as the entries). */
export function writeSampleMetrics(dir: string, metrics: readonly SampleMetrics[]): SampleEntry[] {
  const entries = readSamples(dir);
  if (entries.length !== metrics.length) throw new ArtifactError('ARTIFACT_MISMATCH', `${metrics.length} metrics for ${entries.length} samples`);
  const out = entries.map((e, i) => ({ ...e, metrics: metrics[i]! }));
  writeJsonAtomic(artifactPath(dir, 'samplesIndex'), { samples: out });
  return out;
}

/**
 * Writes each placeholder's attention map (`maps[i]`, [height*width], averaged over layers and heads) as
 * a heatmap over the reference image: attention/before_<i>.png or after_<i>.png.
 */
export async function writeAttentionHeatmaps(
  dir: string,
  when: 'before' | 'after',
  reference: RgbImage,
  maps: readonly ArrayLike<number>[],
  height: number,
  width: number,
): Promise<void> {
  for (const [i, map] of maps.entries()) {
    const file = attentionHeatmapPath(dir, when, i);
    mkdirSync(dirname(file), { recursive: true });
    await writePng(file, heatmapOverlay(reference, Float32Array.from(map), height, width, { alpha: 0.6 }));
  }
}

/** One augmented example as the report reads it (paths relative to the output directory). */
export interface AugmentedEntry {
  file: string;
  prompt: string;
  classPrompt: string;
  nounPrompt: string;
  category: PromptCategory;
  /** Subject indices present, and their mask files (same order). */
  subjects: number[];
  masks: string[];
  /** The same example before GSA (`composed/<image>`), when the directory keeps the composed set. */
  composedFile?: string;
}

/**
 * The entries of augmented/augmented.json (augment/storage.ts: `{ version, examples: [{ image, masks,
 * prompt, ... }] }`, file names relative to augmented/); [] when there is none.
 */
export function readAugmentedIndex(dir: string): AugmentedEntry[] {
  const file = artifactPath(dir, 'augmentedIndex');
  if (!existsSync(file)) return [];
  const list = readJsonObject(file, 'augmented set index')['examples'];
  if (!Array.isArray(list)) throw new ArtifactError('BAD_ARTIFACT', `augmented set index ${file} must have an "examples" array`);
  const rel = (name: string) => `${ARTIFACTS.augmented}/${name}`;
  return (list as Partial<AugmentedEntry & { image: string }>[]).map((e, i) => {
    if (!e || typeof e.image !== 'string' || typeof e.prompt !== 'string')
      throw new ArtifactError('BAD_ARTIFACT', `augmented set index ${file}: example ${i} lacks image or prompt`);
    const composed = `${ARTIFACTS.composed}/${e.image}`;
    return {
      file: rel(e.image),
      prompt: e.prompt,
      classPrompt: e.classPrompt ?? '',
      nounPrompt: e.nounPrompt ?? '',
      category: e.category ?? 'plain',
      subjects: e.subjects ?? [],
      masks: (e.masks ?? []).map(rel),
      ...(existsSync(join(dir, composed)) ? { composedFile: composed } : {}),
    };
  });
}
