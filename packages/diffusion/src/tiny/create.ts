/**
 * `createTinyBundle`: a random-weight Stable Diffusion bundle in the layout optimum exports (DESIGN.md
 * "Model bundle"), small enough that a UNet training step takes a fraction of a second on one core. It
 * is not a model of anything; it exists so that tests and the demo exercise the real code paths (graph
 * surgery on torch-style graphs, symbolic batch, tokenizer, schedulers) with no weights to download.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveModel, type OnnxModel } from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import { writeTinyTokenizer } from '../tokenizer-files.js';
import { TINY_BUNDLE_FACTS } from './facts.js';
import { buildTinyTextEncoder } from './text-encoder.js';
import { buildTinyUnet } from './unet.js';
import { buildTinyVaeDecoder, buildTinyVaeEncoder } from './vae.js';

export interface CreateTinyBundleOptions {
  /** Seed of every weight (an unsigned 32-bit integer); the same seed writes byte-identical files. Default 0. */
  seed?: number;
}

/** What createTinyBundle wrote. */
export interface TinyBundleInfo {
  dir: string;
  seed: number;
  /** Rows of the text encoder's token embedding (the tiny tokenizer's vocabulary). */
  vocabSize: number;
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/** SD 2.1-base's scheduler config (scaled_linear 0.00085..0.012, epsilon, leading spacing, offset 1). */
export const TINY_SCHEDULER_CONFIG = {
  _class_name: 'DDIMScheduler',
  _diffusers_version: '0.21.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
} as const;

function configs(vocabSize: number): Record<'model_index' | 'unet' | 'vae' | 'text_encoder', Record<string, unknown>> {
  const f = TINY_BUNDLE_FACTS;
  return {
    model_index: {
      _class_name: 'ORTStableDiffusionPipeline',
      _diffusers_version: '0.21.0',
      // Not a diffusers key: tells reports that this bundle's images are noise by nature.
      _random_weights: true,
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ['diffusers', 'DDIMScheduler'],
      text_encoder: ['optimum', 'ORTModelTextEncoder'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['optimum', 'ORTModelUnet'],
      vae_decoder: ['optimum', 'ORTModelVaeDecoder'],
      vae_encoder: ['optimum', 'ORTModelVaeEncoder'],
    },
    unet: {
      _class_name: 'UNet2DConditionModel',
      _diffusers_version: '0.21.0',
      act_fn: 'silu',
      // diffusers' (historically misnamed) field: the number of heads per block
      attention_head_dim: f.unet.blockOutChannels.map(() => f.unet.heads),
      block_out_channels: [...f.unet.blockOutChannels],
      center_input_sample: false,
      cross_attention_dim: f.textEmbedDim,
      down_block_types: f.unet.blockOutChannels.map(() => 'CrossAttnDownBlock2D'),
      downsample_padding: 1,
      dual_cross_attention: false,
      flip_sin_to_cos: true,
      freq_shift: 0,
      in_channels: f.latentChannels,
      layers_per_block: f.unet.layersPerBlock,
      mid_block_scale_factor: 1,
      mid_block_type: 'UNetMidBlock2DCrossAttn',
      norm_eps: 1e-5,
      norm_num_groups: f.unet.normGroups,
      out_channels: f.latentChannels,
      sample_size: f.latentSize,
      up_block_types: f.unet.blockOutChannels.map(() => 'CrossAttnUpBlock2D'),
      upcast_attention: false,
      use_linear_projection: true,
    },
    vae: {
      _class_name: 'AutoencoderKL',
      _diffusers_version: '0.21.0',
      act_fn: 'silu',
      block_out_channels: [...f.vae.blockOutChannels],
      down_block_types: f.vae.blockOutChannels.map(() => 'DownEncoderBlock2D'),
      in_channels: 3,
      latent_channels: f.latentChannels,
      layers_per_block: f.vae.layersPerBlock,
      norm_num_groups: f.vae.normGroups,
      out_channels: 3,
      sample_size: f.sampleSize,
      scaling_factor: f.vaeScalingFactor,
      up_block_types: f.vae.blockOutChannels.map(() => 'UpDecoderBlock2D'),
    },
    text_encoder: {
      architectures: ['CLIPTextModel'],
      attention_dropout: 0,
      bos_token_id: vocabSize - 2,
      eos_token_id: vocabSize - 1,
      hidden_act: 'quick_gelu',
      hidden_size: f.textEmbedDim,
      initializer_factor: 1,
      initializer_range: 0.02,
      intermediate_size: f.textEncoder.intermediateSize,
      layer_norm_eps: 1e-5,
      max_position_embeddings: f.maxTokens,
      model_type: 'clip_text_model',
      num_attention_heads: f.textEncoder.heads,
      num_hidden_layers: f.textEncoder.layers,
      pad_token_id: 0, // '!', the tiny tokenizer's pad token (SD 2.x)
      projection_dim: f.textEmbedDim,
      torch_dtype: 'float32',
      vocab_size: vocabSize,
    },
  };
}

/**
 * Writes a tiny random-weight bundle into `dir` (created if needed; existing bundle files are
 * overwritten): model_index.json, scheduler/, tokenizer/, text_encoder/, unet/, vae_encoder/,
 * vae_decoder/ (each model.onnx + config.json). Sizes: TINY_BUNDLE_FACTS.
 */
export async function createTinyBundle(dir: string, options: CreateTinyBundleOptions = {}): Promise<TinyBundleInfo> {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new DiffusionError('BAD_ARGUMENT', `tiny bundle seed ${seed} is not an unsigned 32-bit integer`);
  }
  mkdirSync(dir, { recursive: true });
  const { vocabSize } = writeTinyTokenizer(join(dir, 'tokenizer'));
  const c = configs(vocabSize);
  const write = (sub: string, file: string, text: string) => {
    mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, sub, file), text);
  };
  write('.', 'model_index.json', json(c.model_index));
  write('scheduler', 'scheduler_config.json', json(TINY_SCHEDULER_CONFIG));
  const models: [string, () => OnnxModel, Record<string, unknown>][] = [
    ['text_encoder', () => buildTinyTextEncoder(seed, vocabSize), c.text_encoder],
    ['unet', () => buildTinyUnet(seed), c.unet],
    ['vae_encoder', () => buildTinyVaeEncoder(seed), c.vae],
    ['vae_decoder', () => buildTinyVaeDecoder(seed), c.vae],
  ];
  for (const [sub, build, config] of models) {
    write(sub, 'config.json', json(config));
    saveModel(build(), join(dir, sub, 'model.onnx'));
  }
  return { dir, seed, vocabSize };
}
