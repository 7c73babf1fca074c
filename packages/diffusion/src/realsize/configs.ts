/**
 * The JSON files of an SD 2.1 bundle, with the fields the real repositories (stabilityai/stable-diffusion-2-1
 * and -2-1-base) have, sized from the config: model_index.json in optimum's or diffusers' form,
 * scheduler_config.json, and each model folder's config.json.
 */
import { vaeScaleFactor, type SdBundleConfig, type SdDtype } from './config.js';

type Json = Record<string, unknown>;

/** Which model_index.json: optimum's ORT pipeline (vae_encoder / vae_decoder) or diffusers' StableDiffusionPipeline (vae). */
export type SdBundleLayout = 'optimum' | 'diffusers-index';

const DIFFUSERS_VERSION = '0.21.0';

export function modelIndex(c: SdBundleConfig, layout: SdBundleLayout): Json {
  const common = {
    _diffusers_version: DIFFUSERS_VERSION,
    // Not a diffusers key: tells reports that this bundle's images are noise by nature.
    _random_weights: true,
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', c.schedulerClass],
    tokenizer: ['transformers', 'CLIPTokenizer'],
  };
  if (layout === 'diffusers-index') {
    return {
      _class_name: 'StableDiffusionPipeline',
      ...common,
      text_encoder: ['transformers', 'CLIPTextModel'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
    };
  }
  return {
    _class_name: 'ORTStableDiffusionPipeline',
    ...common,
    text_encoder: ['optimum', 'ORTModelTextEncoder'],
    unet: ['optimum', 'ORTModelUnet'],
    vae_decoder: ['optimum', 'ORTModelVaeDecoder'],
    vae_encoder: ['optimum', 'ORTModelVaeEncoder'],
  };
}

/** SD 2.1's scheduler config: scaled_linear 0.00085..0.012 over 1000 steps, steps_offset 1, the variant's prediction type. */
export function schedulerConfig(c: SdBundleConfig): Json {
  return {
    _class_name: c.schedulerClass,
    _diffusers_version: DIFFUSERS_VERSION,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: c.predictionType,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: 'leading',
    trained_betas: null,
  };
}

export function unetConfig(c: SdBundleConfig): Json {
  const u = c.unet;
  return {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: DIFFUSERS_VERSION,
    act_fn: 'silu',
    attention_head_dim: [...u.attentionHeads], // diffusers' (historically misnamed) field: heads per block
    block_out_channels: [...u.blockOutChannels],
    center_input_sample: false,
    cross_attention_dim: c.textEncoder.hiddenSize,
    down_block_types: [...u.downBlockTypes],
    downsample_padding: 1,
    dual_cross_attention: false,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: c.latentChannels,
    layers_per_block: u.layersPerBlock,
    mid_block_scale_factor: 1,
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    norm_eps: 1e-5,
    norm_num_groups: u.normGroups,
    num_class_embeds: null,
    only_cross_attention: false,
    out_channels: c.latentChannels,
    sample_size: c.sampleSize / vaeScaleFactor(c),
    up_block_types: [...u.upBlockTypes],
    upcast_attention: u.upcastAttention,
    use_linear_projection: true,
  };
}

/** One config for both VAE halves, as optimum copies AutoencoderKL's into vae_encoder/ and vae_decoder/. */
export function vaeConfig(c: SdBundleConfig): Json {
  const v = c.vae;
  return {
    _class_name: 'AutoencoderKL',
    _diffusers_version: DIFFUSERS_VERSION,
    act_fn: 'silu',
    block_out_channels: [...v.blockOutChannels],
    down_block_types: v.blockOutChannels.map(() => 'DownEncoderBlock2D'),
    in_channels: 3,
    latent_channels: c.latentChannels,
    layers_per_block: v.layersPerBlock,
    norm_num_groups: v.normGroups,
    out_channels: 3,
    sample_size: c.sampleSize,
    scaling_factor: v.scalingFactor,
    up_block_types: v.blockOutChannels.map(() => 'UpDecoderBlock2D'),
  };
}

/** SD 2.x's text_encoder/config.json: eos_token_id 2 (the pre-#24773 value, so pooling takes ArgMax of the ids). */
export function textEncoderConfig(c: SdBundleConfig, dtype: SdDtype): Json {
  const t = c.textEncoder;
  return {
    architectures: ['CLIPTextModel'],
    attention_dropout: 0,
    bos_token_id: 0,
    dropout: 0,
    eos_token_id: 2,
    hidden_act: 'gelu',
    hidden_size: t.hiddenSize,
    initializer_factor: 1,
    initializer_range: 0.02,
    intermediate_size: t.intermediateSize,
    layer_norm_eps: 1e-5,
    max_position_embeddings: t.maxPositions,
    model_type: 'clip_text_model',
    num_attention_heads: t.heads,
    num_hidden_layers: t.layers,
    pad_token_id: 1,
    projection_dim: 512,
    torch_dtype: dtype === 'fp16' ? 'float16' : 'float32',
    vocab_size: t.vocabSize,
  };
}
