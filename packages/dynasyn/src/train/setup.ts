/**
 * What a training run prepares once: the tokenizer with placeholders, the VAE latents of the reference
 * (plain and flipped) and of each augmented image, and the frozen original model that gives A(c_hat).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { withCleanup } from '@dynasyn/domain';
import { ClipTokenizer, VaeEncoder, createScheduler, type ExecutionProvider, type ModelBundle } from '@dynasyn/diffusion';
import { fromNumbers, toNumbers, type HostTensor } from '@dynasyn/ort-training';
import { buildClassMapModel, hasExternalData, modelSource } from '../graph/index.js';
import { flipHorizontal, imageToTensor } from '@dynasyn/imaging';
import type { AugmentedExample, PersonalizationInput, RgbImage, Subject } from '../types.js';
import type { BatchSetup, ClassMapRunner } from './batch.js';
import { TrainingError } from './errors.js';
import { placeholderToken } from './union.js';

export interface RuntimeChoice {
  executionProviders?: ExecutionProvider[];
  intraOpNumThreads?: number;
}

/** Attention grid of the captured layers: the latent side divided by `divisor`, rounded up (METHOD.md: latent/4). */
export function attentionGrid(bundle: ModelBundle, divisor: number): [number, number] {
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  if (!(divisor >= 1)) throw new TrainingError('BAD_INPUT', `attentionGridDivisor must be >= 1, got ${divisor}`);
  return [Math.ceil(side / divisor), Math.ceil(side / divisor)];
}

/**
 * The bundle's tokenizer with `<asset0>..<asset{n-1}>` added, each of `vectors` embedding rows (the
 * tokenizer's multi-vector tokens); `baseVocabSize` is its size before.
 */
export function placeholderTokenizer(bundle: ModelBundle, n: number, vectors = 1): { tokenizer: ClipTokenizer; baseVocabSize: number; tokens: string[] } {
  const tokenizer = ClipTokenizer.fromDir(bundle.tokenizerDir);
  const baseVocabSize = tokenizer.vocabSize;
  const tokens = Array.from({ length: n }, (_, i) => placeholderToken(i));
  tokenizer.addTokens(tokens, vectors);
  return { tokenizer, baseVocabSize, tokens };
}

/**
 * The token rows subject `s`'s `vectors` placeholder rows start from. One vector: the first sub-token of its
 * class word (METHOD.md). Several: the sub-tokens of its noun phrase in order (`orange striped cat with a
 * bow`; the class word when it has none), the first `vectors` of them, the rest from the class word's first
 * sub-token: the rows start where a description in words stands, and training moves them toward the image.
 */
export function placeholderStartIds(tokenizer: ClipTokenizer, s: Pick<Subject, 'classWord' | 'nounPhrase'>, vectors: number): number[] {
  const first = tokenizer.firstSubTokenId(s.classWord);
  if (vectors === 1) return [first];
  const phrase = s.nounPhrase?.trim() ? tokenizer.classWordIds(s.nounPhrase) : [first];
  return Array.from({ length: vectors }, (_, k) => phrase[k] ?? first);
}

function checkSize(image: RgbImage, bundle: ModelBundle, what: string): void {
  if (image.width !== bundle.sampleSize || image.height !== bundle.sampleSize) {
    throw new TrainingError(
      'BAD_INPUT',
      `${what} is ${image.width}x${image.height}; the backbone trains at ${bundle.sampleSize}x${bundle.sampleSize} (fit it first, e.g. loadInput / fitToSquare)`,
    );
  }
}

/** z0 = VAE posterior mean * scaling factor (VaeEncoder applies the factor) of the reference, plain and flipped, and of each augmented image. */
export async function encodeLatents(
  bundle: ModelBundle,
  input: PersonalizationInput,
  augmented: readonly AugmentedExample[],
  runtime: RuntimeChoice,
): Promise<Pick<BatchSetup, 'reference' | 'augmented' | 'latentShape'>> {
  checkSize(input.image, bundle, 'the reference image');
  augmented.forEach((a, i) => checkSize(a.image, bundle, `augmented image ${i}`));
  const vae = await VaeEncoder.create(bundle, runtime);
  const encode = async (): Promise<Pick<BatchSetup, 'reference' | 'augmented' | 'latentShape'>> => {
    const plain = imageToTensor(input.image),
      flipped = imageToTensor(flipHorizontal(input.image));
    const both = await vae.encode({ dims: [2, ...plain.dims.slice(1)], data: concat(plain.data, flipped.data) });
    const [, C, h, w] = both.dims as [number, number, number, number];
    const n = C * h * w;
    const latents: { example: AugmentedExample; latents: Float32Array }[] = [];
    for (const example of augmented) latents.push({ example, latents: (await vae.encode(imageToTensor(example.image))).data });
    return { reference: { plain: both.data.slice(0, n), flipped: both.data.slice(n) }, augmented: latents, latentShape: [C, h, w] };
  };
  return withCleanup(encode, () => [() => vae.release()]);
}

const concat = (a: Float32Array, b: Float32Array): Float32Array => {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** The frozen original model (text encoder + UNet from the bundle's files, never the trainable graph). */
export interface FrozenClassModel {
  run: ClassMapRunner;
  release(): Promise<void>;
}

const ORT_TYPES: Record<number, ort.Tensor.Type> = { 1: 'float32', 6: 'int32', 7: 'int64', 10: 'float16', 11: 'float64' };
function ortTensor(dtype: number, dims: number[], values: ArrayLike<number>): ort.Tensor {
  const t = fromNumbers(dtype, dims, values);
  const type = ORT_TYPES[dtype];
  if (!type) throw new TrainingError('BAD_INPUT', `the class-map graph takes an input of ONNX type ${dtype}, which the trainer cannot feed`);
  return new ort.Tensor(type, t.data as Float32Array, dims);
}

/**
 * A(c_hat) from graph/'s class-map model: the bundle's ORIGINAL text encoder and UNet composed at batch 2
 * with attention capture at `grid` (the training graph's composition, without placeholder rows, adapters
 * or losses), in its own onnxruntime session, so no trainable value can reach it.
 */
export async function frozenClassModel(bundle: ModelBundle, grid: [number, number], runtime: RuntimeChoice, cacheDir?: string): Promise<FrozenClassModel> {
  const cm = buildClassMapModel(bundle, { grid, batch: 2 });
  const tmp = hasExternalData(cm.model) && !cacheDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-class-map-')) : undefined;
  // the cache may be shared by runs on other bundles: one folder per bundle and grid
  const key = createHash('sha256')
    .update(JSON.stringify([path.resolve(bundle.dir), grid]))
    .digest('hex')
    .slice(0, 16);
  const source = modelSource(cm.model, tmp ?? (cacheDir && path.join(cacheDir, 'class-map', key)), 'class_map');
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: runtime.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
    ...(runtime.intraOpNumThreads !== undefined ? { intraOpNumThreads: runtime.intraOpNumThreads } : {}),
  };
  const session = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
  const { inputIds, noisyLatents, timestep } = cm.inputs;
  return {
    run: async (classIds, latents, timesteps) => {
      const out = await session.run(
        {
          [inputIds.name]: ortTensor(inputIds.dtype, inputIds.dims, classIds),
          [noisyLatents.name]: ortTensor(noisyLatents.dtype, noisyLatents.dims, latents),
          [timestep.name]: ortTensor(timestep.dtype, timestep.dims, timesteps.slice(0, timestep.dims.length === 1 ? timestep.dims[0] : 1)), // one for the batch: both rows share it
        },
        [cm.output],
      );
      const maps = out[cm.output]!;
      return maps.type === 'float32' ? (maps.data as Float32Array).slice() : Float32Array.from(toNumbers(fromOrt(maps)));
    },
    release: async () => {
      await session.release();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A float16 ort tensor as a HostTensor (raw bits) for toNumbers. */
const fromOrt = (t: ort.Tensor): HostTensor => ({ dtype: t.type === 'float16' ? 10 : 11, dims: [...t.dims], data: t.data as Uint16Array });

/** DDPM, the forward process the losses are defined with (METHOD.md: z_t = DDPM add_noise(z0, eps, t)). */
export const trainingScheduler = (bundle: ModelBundle) => createScheduler('ddpm', bundle.scheduler);
