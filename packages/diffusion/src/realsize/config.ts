/**
 * The sizes of a Stable-Diffusion-2.1-shaped bundle, with SD 2.1's real values as the presets. A smaller
 * config of the same structure (narrower blocks, fewer layers) builds the same graphs in a fraction of
 * the time, which is what the tests use.
 */

export type SdVariant = 'sd21-base' | 'sd21';
export type SdDtype = 'fp32' | 'fp16';

export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** diffusers' UNet2DConditionModel fields that decide the graph (SD 2.x: linear projections, one transformer per attention). */
export interface SdUnetConfig {
  blockOutChannels: number[];
  /** One per level; a CrossAttn block has a Transformer2DModel after each resnet. */
  downBlockTypes: DownBlockType[];
  /** One per level, deepest first; up blocks have layersPerBlock + 1 resnets. */
  upBlockTypes: UpBlockType[];
  layersPerBlock: number;
  /** Heads per level (diffusers' historically misnamed `attention_head_dim`); up blocks take them reversed, the mid block the last. */
  attentionHeads: number[];
  normGroups: number;
  /** Width of the time embedding (4 x blockOutChannels[0] in SD). */
  timeEmbedDim: number;
  /** diffusers' upcast_attention (SD 2.1 768 px: true): q and k go to float32 in an fp16 export; no-op in fp32. */
  upcastAttention: boolean;
}

/** transformers' CLIPTextModel fields (the OpenCLIP ViT-H text tower in SD 2.x). */
export interface SdTextEncoderConfig {
  layers: number;
  hiddenSize: number;
  heads: number;
  intermediateSize: number;
  /** Rows of the token embedding; the tokenizer has exactly this many tokens. */
  vocabSize: number;
  maxPositions: number;
}

/** diffusers' AutoencoderKL fields. */
export interface SdVaeConfig {
  blockOutChannels: number[];
  layersPerBlock: number;
  normGroups: number;
  scalingFactor: number;
}

export interface SdBundleConfig {
  /** Image side in pixels; latents are sampleSize / 2^(vae levels - 1). */
  sampleSize: number;
  latentChannels: number;
  predictionType: 'epsilon' | 'v_prediction';
  /** The scheduler class the real model ships with. */
  schedulerClass: 'PNDMScheduler' | 'DDIMScheduler';
  unet: SdUnetConfig;
  textEncoder: SdTextEncoderConfig;
  vae: SdVaeConfig;
}

/** The number of tokens of CLIP's BPE vocabulary (SD 2.1's tokenizer and token embedding). */
export const CLIP_VOCAB_SIZE = 49408;

const SD21_UNET: SdUnetConfig = {
  blockOutChannels: [320, 640, 1280, 1280],
  downBlockTypes: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  upBlockTypes: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  layersPerBlock: 2,
  attentionHeads: [5, 10, 20, 20],
  normGroups: 32,
  timeEmbedDim: 1280,
  upcastAttention: false,
};

const SD21_TEXT_ENCODER: SdTextEncoderConfig = {
  layers: 23,
  hiddenSize: 1024,
  heads: 16,
  intermediateSize: 4096,
  vocabSize: CLIP_VOCAB_SIZE,
  maxPositions: 77,
};
const SD_VAE: SdVaeConfig = { blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, normGroups: 32, scalingFactor: 0.18215 };

/** SD 2.1's real sizes: 2.1-base (512 px, epsilon, PNDM) and 2.1 (768 px, v-prediction, DDIM, upcast attention). */
export const SD21_PRESETS: Readonly<Record<SdVariant, SdBundleConfig>> = Object.freeze({
  'sd21-base': {
    sampleSize: 512,
    latentChannels: 4,
    predictionType: 'epsilon',
    schedulerClass: 'PNDMScheduler',
    unet: SD21_UNET,
    textEncoder: SD21_TEXT_ENCODER,
    vae: SD_VAE,
  },
  sd21: {
    sampleSize: 768,
    latentChannels: 4,
    predictionType: 'v_prediction',
    schedulerClass: 'DDIMScheduler',
    unet: { ...SD21_UNET, upcastAttention: true },
    textEncoder: SD21_TEXT_ENCODER,
    vae: SD_VAE,
  },
});

/**
 * The toy-world backbone (models/toyworld, trained by @dynasyn/toyworld-backbone): SD 2.1's structure scaled to
 * 64x64 images, sized from measured step times on two cores (packages/toyworld-backbone/README.md, "Size").
 * The VAE has three levels (scale factor 4: latents 4x16x16); the UNet has cross-attention at 16x16 (level 0)
 * and 8x8 (level 1) in its down and up blocks and at 4x4 in the mid block. The one definition of that
 * architecture: the trainer builds the bundle from it and ort-training's step benchmark times its UNet.
 * `vocabSize`: the rows of the token embedding (the tokenizer learned from the captions); nothing else uses it.
 */
export function toyworldBundleConfig(vocabSize: number): SdBundleConfig {
  return {
    sampleSize: 64,
    latentChannels: 4,
    predictionType: 'epsilon',
    schedulerClass: 'DDIMScheduler',
    unet: {
      blockOutChannels: [64, 128, 128],
      downBlockTypes: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
      upBlockTypes: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
      layersPerBlock: 1,
      attentionHeads: [4, 4, 4],
      normGroups: 32,
      timeEmbedDim: 256,
      upcastAttention: false,
    },
    textEncoder: { layers: 3, hiddenSize: 128, heads: 4, intermediateSize: 512, vocabSize, maxPositions: 77 },
    // 16 channels at full resolution: the decoder's 64x64 stage costs most of a VAE step, and flat-shaded
    // renders need little there ([32, 64, 64] measured 3x slower per step)
    vae: { blockOutChannels: [16, 32, 64], layersPerBlock: 1, normGroups: 8, scalingFactor: 1 },
  };
}

/** Pixels per latent cell: one stride-2 stage per VAE level but the last. */
export const vaeScaleFactor = (c: SdBundleConfig): number => 2 ** (c.vae.blockOutChannels.length - 1);
export const latentSize = (c: SdBundleConfig): number => c.sampleSize / vaeScaleFactor(c);

/** Throws a plain Error naming the first field that cannot build (the caller wraps it). */
export function checkSdConfig(c: SdBundleConfig): void {
  const u = c.unet,
    t = c.textEncoder,
    v = c.vae;
  const levels = u.blockOutChannels.length;
  const fail = (why: string) => {
    throw new Error(why);
  };
  if (u.downBlockTypes.length !== levels || u.upBlockTypes.length !== levels || u.attentionHeads.length !== levels)
    fail('unet: blockOutChannels, downBlockTypes, upBlockTypes and attentionHeads need one entry per level');
  u.blockOutChannels.forEach((ch, i) => {
    if (ch % u.normGroups !== 0) fail(`unet: block ${i} has ${ch} channels, not a multiple of normGroups ${u.normGroups}`);
    if (ch % u.attentionHeads[i]! !== 0) fail(`unet: block ${i} has ${ch} channels, not a multiple of its ${u.attentionHeads[i]} heads`);
  });
  if (t.hiddenSize % t.heads !== 0) fail(`textEncoder: hiddenSize ${t.hiddenSize} is not a multiple of heads ${t.heads}`);
  if (v.blockOutChannels.some((ch) => ch % v.normGroups !== 0))
    fail(`vae: blockOutChannels ${v.blockOutChannels} are not multiples of normGroups ${v.normGroups}`);
  const latent = latentSize(c);
  if (!Number.isInteger(latent) || latent % 2 ** (levels - 1) !== 0)
    fail(`sampleSize ${c.sampleSize} gives latents of ${latent}, which the UNet's ${levels - 1} downsamplings cannot halve evenly`);
}
