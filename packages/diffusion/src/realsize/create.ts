/**
 * `createSdBundle`: a random-weight bundle with Stable Diffusion 2.1's structure at its real size, laid
 * out as optimum exports it, for memory and speed benchmarks (DESIGN.md "Model bundle"). It draws nothing.
 *
 * Memory stays at about one tensor: each parameter is drawn into a typed array and written out at once,
 * into the model's model.onnx_data when its weights exceed protobuf's 2 GiB (optimum's rule: the fp32
 * UNet's 3.46 GB; the fp16 UNet's 1.73 GB stays inline), else into a spool that is then copied inline into
 * its model.onnx (onnx-writer.ts).
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, saveModel, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import { writeTokenizerFiles } from '../tokenizer-files.js';
import type { ClipTokenizerFiles } from '../tokenizer.js';
import { ModuleBuilder } from '../tiny/module-builder.js';
import { checkSdConfig, SD21_PRESETS, type SdBundleConfig, type SdDtype, type SdVariant } from './config.js';
import { modelIndex, schedulerConfig, textEncoderConfig, unetConfig, vaeConfig, type SdBundleLayout } from './configs.js';
import { textEncoderParameterCount, unetParameterCount, vaeParameterCounts } from './counts.js';
import { saveModelInliningSpool } from './onnx-writer.js';
import { fastNormals } from './prng.js';
import { buildSdTextEncoder } from './text-encoder.js';
import { writeClipSizedTokenizer } from './tokenizer.js';
import { buildSdUnet } from './unet.js';
import { buildSdVaeDecoder, buildSdVaeEncoder } from './vae.js';
import { spillTo, WeightFile } from './weights.js';

export type SdBundlePart = 'text_encoder' | 'unet' | 'vae_encoder' | 'vae_decoder';

export interface SdBundleProgress {
  /** The model being written. */
  part: SdBundlePart;
  /** Parameters written so far, over the whole bundle. */
  done: number;
  /** Parameters of the whole bundle. */
  total: number;
}

export interface CreateSdBundleOptions {
  /** 'sd21-base' (512 px, epsilon; default) or 'sd21' (768 px, v-prediction). */
  variant?: SdVariant;
  /** 'fp32' (default) or 'fp16': every float weight, input, output and constant in float16, as optimum's --fp16. */
  dtype?: SdDtype;
  /** Seed of every weight (an unsigned 32-bit integer); the same seed writes byte-identical files. Default 0. */
  seed?: number;
  /** model_index.json in optimum's form (default) or diffusers' StableDiffusionPipeline form; same folders. */
  layout?: SdBundleLayout;
  /** Sizes to use instead of the variant's preset (same structure, e.g. narrower for tests); see SD21_PRESETS. */
  config?: SdBundleConfig;
  /** Models whose weights go to `model.onnx_data`; default those over protobuf's 2 GiB, as optimum decides. */
  externalData?: SdBundlePart[];
  /** Called after each parameter is written. */
  onProgress?: (progress: SdBundleProgress) => void;
  /** Tokenizer files to write instead of the synthetic CLIP-sized one (a tokenizer learned for the model); its size must be the text encoder's vocabSize. */
  tokenizer?: ClipTokenizerFiles;
}

/** What createSdBundle wrote. */
export interface SdBundleInfo {
  dir: string;
  variant: SdVariant;
  dtype: SdDtype;
  seed: number;
  config: SdBundleConfig;
  /** Float parameters of each model. */
  parameters: Record<SdBundlePart, number>;
  /** Bytes of each model's files (model.onnx plus its external data). */
  bytes: Record<SdBundlePart, number>;
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';
/** onnx.checker.MAXIMUM_PROTOBUF: optimum saves a model with external data when it is larger. */
const MAXIMUM_PROTOBUF = 2 ** 31;

/** Float parameters of each model of a bundle with `config`. */
export function sdParameterCounts(config: SdBundleConfig): Record<SdBundlePart, number> {
  const vae = vaeParameterCounts(config);
  return { text_encoder: textEncoderParameterCount(config), unet: unetParameterCount(config), vae_encoder: vae.encoder, vae_decoder: vae.decoder };
}

/** The models optimum would save with external data: those whose weights exceed protobuf's 2 GiB. */
export function partsOverProtobufLimit(config: SdBundleConfig, dtype: SdDtype): SdBundlePart[] {
  const counts = sdParameterCounts(config);
  return (Object.keys(counts) as SdBundlePart[]).filter((p) => counts[p] * (dtype === 'fp16' ? 2 : 4) > MAXIMUM_PROTOBUF);
}

/**
 * Writes the bundle into `dir` (created if needed; existing bundle files are overwritten): model_index.json,
 * scheduler/, tokenizer/ (a synthetic 49408-token CLIP BPE, or options.tokenizer), text_encoder/ (weights inline), unet/
 * (model.onnx + model.onnx_data), vae_encoder/, vae_decoder/, each with its config.json. The sd21-base fp32
 * bundle is 5.2 GB.
 */
export async function createSdBundle(dir: string, options: CreateSdBundleOptions = {}): Promise<SdBundleInfo> {
  const variant = options.variant ?? 'sd21-base';
  const dtype = options.dtype ?? 'fp32';
  const seed = options.seed ?? 0;
  const layout = options.layout ?? 'optimum';
  if (!(variant in SD21_PRESETS))
    throw new DiffusionError('BAD_ARGUMENT', `unknown SD variant ${JSON.stringify(variant)}; expected ${Object.keys(SD21_PRESETS).join(' or ')}`);
  if (dtype !== 'fp32' && dtype !== 'fp16') throw new DiffusionError('BAD_ARGUMENT', `unknown dtype ${JSON.stringify(dtype)}; expected fp32 or fp16`);
  if (layout !== 'optimum' && layout !== 'diffusers-index')
    throw new DiffusionError('BAD_ARGUMENT', `unknown layout ${JSON.stringify(layout)}; expected optimum or diffusers-index`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new DiffusionError('BAD_ARGUMENT', `SD bundle seed ${seed} is not an unsigned 32-bit integer`);
  const config = options.config ?? SD21_PRESETS[variant];
  try {
    checkSdConfig(config);
  } catch (e) {
    throw new DiffusionError('BAD_ARGUMENT', `SD bundle config: ${(e as Error).message}`);
  }

  const parameters = sdParameterCounts(config);
  const total = Object.values(parameters).reduce((a, b) => a + b, 0);
  let done = 0;

  mkdirSync(dir, { recursive: true });
  const tokenizerDir = join(dir, 'tokenizer');
  const { vocabSize } = options.tokenizer
    ? writeTokenizerFiles(tokenizerDir, options.tokenizer)
    : writeClipSizedTokenizer(tokenizerDir, config.textEncoder.vocabSize);
  if (vocabSize !== config.textEncoder.vocabSize) throw new Error(`tokenizer has ${vocabSize} tokens, the text encoder ${config.textEncoder.vocabSize}`);
  const write = (sub: string, file: string, value: unknown) => {
    mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, sub, file), json(value));
  };
  write('.', 'model_index.json', modelIndex(config, layout));
  write('scheduler', 'scheduler_config.json', schedulerConfig(config));

  const floatType = dtype === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
  const externalParts = options.externalData ?? partsOverProtobufLimit(config, dtype);
  const bytes = {} as Record<SdBundlePart, number>;
  const models: [SdBundlePart, string, (m: ModuleBuilder) => OnnxModel, Record<string, unknown>, number][] = [
    ['text_encoder', 'text_encoder', (m) => buildSdTextEncoder(m, config), textEncoderConfig(config, dtype), 1000],
    ['unet', 'unet', (m) => buildSdUnet(m, config), unetConfig(config), 1000],
    ['vae_encoder', 'vae', (m) => buildSdVaeEncoder(m, config), vaeConfig(config), 1000],
    // same seed key as the encoder (one AutoencoderKL), anonymous weights numbered apart as in the tiny bundle
    ['vae_decoder', 'vae', (m) => buildSdVaeDecoder(m, config), vaeConfig(config), 5000],
  ];
  for (const [part, seedModel, build, modelConfig, anonymousStart] of models) {
    write(part, 'config.json', modelConfig);
    const modelFile = join(dir, part, 'model.onnx');
    const external = externalParts.includes(part);
    const weights = new WeightFile(external ? join(dir, part, 'model.onnx_data') : `${modelFile}.spool-${process.pid}`, external ? 4096 : 1);
    try {
      const store = spillTo(weights, (n) => {
        done += n;
        options.onProgress?.({ part, done, total });
      });
      const model = build(new ModuleBuilder(`${seed}/${seedModel}`, anonymousStart, { floatType, normals: fastNormals, store }));
      model.producerName = 'dynasyn-create-sd21';
      weights.close();
      if (external) saveModel(model, modelFile);
      else saveModelInliningSpool(model, modelFile, weights.path);
    } finally {
      weights.close();
      if (!external) rmSync(weights.path, { force: true });
    }
    bytes[part] = statSync(modelFile).size + (external ? statSync(weights.path).size : 0);
  }
  return { dir, variant, dtype, seed, config, parameters, bytes };
}
