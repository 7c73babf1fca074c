/**
 * A complete output directory written through the artifacts API without running the method: a reference
 * with two subjects, augmented images with pseudo masks, attention maps, metrics of both phases and
 * samples. For the report's and the evaluation's tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { maskToImage, writePng } from '@dynasyn/imaging';
import type { Mask, RgbImage } from '../types.js';
import {
  MetricsRecorder,
  attentionVsMask,
  createManifest,
  writeAttentionHeatmaps,
  writeInputs,
  writeJsonAtomic,
  writeManifest,
  writeSamples,
} from '../output/artifacts.js';

/** A prompt with every HTML special character, to prove the report escapes user text. */
export const HOSTILE_PROMPT = `a photo of <asset0> & "<asset1>" <script>alert('x')</script>`;

export function rectMask(size: number, x0: number, y0: number, x1: number, y1: number): Mask {
  const data = new Uint8Array(size * size);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * size + x] = 1;
  return { width: size, height: size, data };
}

/** A smooth colour picture with two coloured blocks where the masks are. */
export function syntheticImage(size: number, seed: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      data[i] = ((x * 255) / size + seed * 40) & 255;
      data[i + 1] = ((y * 255) / size) & 255;
      data[i + 2] = (((x + y) * 128) / size + seed * 90) & 255;
    }
  }
  return { width: size, height: size, data };
}

/** An attention map [g*g] peaking at (cx, cy) in grid cells. */
export function blobMap(g: number, cx: number, cy: number, sigma: number): Float32Array {
  const out = new Float32Array(g * g);
  for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) out[y * g + x] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));
  return out;
}

export interface SyntheticOutputOptions {
  randomWeights?: boolean;
  /** Training steps per phase. */
  steps?: number;
  size?: number;
}

/** Writes a fake bundle (model_index.json only) at `<root>/bundle` and a full output directory at `<root>/out`. */
export async function writeSyntheticOutput(
  root: string,
  options: SyntheticOutputOptions = {},
): Promise<{ dir: string; bundle: string; image: RgbImage; masks: Mask[] }> {
  const size = options.size ?? 64,
    steps = options.steps ?? 12;
  const bundle = join(root, 'bundle'),
    dir = join(root, 'out');
  mkdirSync(join(bundle, 'unet'), { recursive: true });
  writeFileSync(join(bundle, 'model_index.json'), '{"_class_name":"ORTStableDiffusionPipeline"}\n');
  writeFileSync(join(bundle, 'unet', 'model.onnx'), new Uint8Array(100));
  const manifest = createManifest({
    backboneDir: bundle,
    tokens: ['<asset0>', '<asset1>'],
    classWords: ['panda', 'bowl'],
    nounPhrases: ['toy panda', 'bowl'],
    embeddingDim: 64,
    preset: 'tiny',
    seed: 7,
    options: { preset: 'tiny' },
    randomWeights: options.randomWeights ?? true,
  });
  manifest.phasesCompleted.push('prepare', 'augment', 'phase1', 'phase2', 'sample');
  writeManifest(dir, manifest);

  const image = syntheticImage(size, 0);
  const h = size / 2;
  const masks = [rectMask(size, 4, 8, h - 2, size - 8), rectMask(size, h + 4, h, size - 4, size - 4)];
  await writeInputs(dir, image, masks);

  mkdirSync(join(dir, 'augmented'), { recursive: true });
  const examples = [];
  for (let k = 0; k < 3; k++) {
    const image = `aug-00${k}.png`;
    await writePng(join(dir, 'augmented', image), syntheticImage(size, k + 1));
    const maskFiles = masks.map((_, j) => `aug-00${k}-mask-${j}.png`);
    for (const [j, f] of maskFiles.entries()) await writePng(join(dir, 'augmented', f), maskToImage(masks[j]!));
    examples.push({
      image,
      prompt: k === 0 ? HOSTILE_PROMPT : `a photo of <asset0> and <asset1> on a beach ${k}`,
      classPrompt: 'a photo of panda and bowl',
      nounPrompt: 'a photo of toy panda and bowl',
      category: k === 2 ? 'interaction' : 'plain',
      subjects: [0, 1],
      masks: maskFiles,
    });
  }
  // an entry pointing outside the directory: the report must not inline it
  examples.push({
    image: '../../bundle/model_index.json',
    prompt: 'escape attempt',
    classPrompt: '',
    nounPrompt: '',
    category: 'plain',
    subjects: [],
    masks: [],
  });
  // augment/storage.ts's format (saveAugmented), written by hand to include the hostile entries
  writeJsonAtomic(join(dir, 'augmented', 'augmented.json'), { version: 1, examples });

  const g = 8;
  const before = [blobMap(g, 4, 4, 3), blobMap(g, 4, 4, 3)];
  const after = [blobMap(g, 1.5, 4, 1.2), blobMap(g, 6, 6, 1.2)];
  await writeAttentionHeatmaps(dir, 'before', image, before, g, g);
  await writeAttentionHeatmaps(dir, 'after', image, after, g, g);

  const rec = MetricsRecorder.open(dir);
  for (const phase of [1, 2] as const) {
    for (let s = 0; s < steps; s++) {
      const t = (phase - 1) * steps + s;
      const md = 0.2 + 0.05 * Math.cos(t),
        m2a = 2 * Math.exp(-t / 8),
        ica = 1.5 * Math.exp(-t / 10),
        aug = s % 5 === 0 ? Number.NaN : 0.3;
      rec.recordStep({
        phase,
        step: s,
        md,
        m2a,
        ica,
        aug,
        total: md + 0.01 * m2a + 0.005 * ica,
        lr: phase === 1 ? 5e-3 : 2e-6,
        gradNorm: 1 / (1 + t),
        ms: 40 + s,
      });
    }
  }
  rec.addTiming('augment', 1234);
  rec.addTiming('train', 4567);
  rec.setAttention(
    'before',
    before.map((m, i) => attentionVsMask(manifest.tokens[i]!, m, g, g, masks[i]!)),
  );
  rec.setAttention(
    'after',
    after.map((m, i) => attentionVsMask(manifest.tokens[i]!, m, g, g, masks[i]!)),
  );
  rec.flush();

  await writeSamples(
    dir,
    [
      { prompt: HOSTILE_PROMPT, classPrompt: 'a photo of panda & "bowl"', category: 'interaction', seed: 11, image: syntheticImage(size, 5) },
      {
        prompt: 'a photo of <asset0> in the snow',
        classPrompt: 'a photo of panda in the snow',
        category: 'action',
        seed: 12,
        image: syntheticImage(size, 6),
        metrics: { clipT: 0.31, clipI: 0.82 },
      },
    ],
    { steps: 4, guidance: 7.5, scheduler: 'ddim' },
  );
  return { dir, bundle, image, masks };
}
