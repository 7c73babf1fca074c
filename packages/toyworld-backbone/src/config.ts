/**
 * The toy-world backbone's sizes. The trained bundle's ('toy') is @dynasyn/diffusion's toyworldBundleConfig:
 * Stable Diffusion 2.1's structure scaled to 64x64 images, the one definition that @dynasyn/ort-training's
 * step benchmark times too. 'test' is a much smaller bundle of the same structure, for the tests.
 */
import { toyworldBundleConfig, type SdBundleConfig } from '@dynasyn/diffusion';

export type ToyPreset = 'toy' | 'test';

/** CLIP's context length: the product pads every prompt to 77 tokens. */
export const MAX_POSITIONS = 77;

/** The trained bundle ('toy': sized from measured step times on two cores, README "Size") or the tests' ('test'). */
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
  return toyworldBundleConfig(vocabSize);
}
