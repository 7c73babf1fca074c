/**
 * The toy-world backbone's sizes: Stable Diffusion 2.1's structure (realsize/config.ts) scaled to 64x64
 * images. The VAE has three levels (scale factor 4: latents 4x16x16); the UNet has cross-attention at 16x16
 * (level 0) and 8x8 (level 1) in its down and up blocks and at 4x4 in the mid block.
 */
import type { SdBundleConfig } from '@dynasyn/diffusion';

export type ToyPreset = 'toy' | 'test';

/** CLIP's context length: the product pads every prompt to 77 tokens. */
export const MAX_POSITIONS = 77;

/** The trained bundle: sized from measured step times on two cores (README, "Size"). */
export function toyBundleConfig(vocabSize: number, preset: ToyPreset = 'toy'): SdBundleConfig {
  if (preset === 'test') {
    return {
      sampleSize: 16,
      latentChannels: 4,
      predictionType: 'epsilon',
      schedulerClass: 'DDIMScheduler',
      unet: {
        blockOutChannels: [16, 32],
        downBlockTypes: ['CrossAttnDownBlock2D', 'DownBlock2D'],
        upBlockTypes: ['UpBlock2D', 'CrossAttnUpBlock2D'],
        layersPerBlock: 1,
        attentionHeads: [2, 2],
        normGroups: 8,
        timeEmbedDim: 32,
        upcastAttention: false,
      },
      textEncoder: { layers: 1, hiddenSize: 32, heads: 2, intermediateSize: 64, vocabSize, maxPositions: MAX_POSITIONS },
      vae: { blockOutChannels: [8, 16, 16], layersPerBlock: 1, normGroups: 8, scalingFactor: 1 },
    };
  }
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
    textEncoder: { layers: 3, hiddenSize: 128, heads: 4, intermediateSize: 512, vocabSize, maxPositions: MAX_POSITIONS },
    // 16 channels at full resolution: the decoder's 64x64 stage costs most of a VAE step, and flat-shaded
    // renders need little there ([32, 64, 64] measured 3x slower per step)
    vae: { blockOutChannels: [16, 32, 64], layersPerBlock: 1, normGroups: 8, scalingFactor: 1 },
  };
}
