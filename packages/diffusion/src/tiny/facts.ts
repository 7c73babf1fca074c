/** Sizes of the tiny bundle, for tests and demos that need to know them without loading it. */
export const TINY_BUNDLE_FACTS = {
  /** Image side in pixels. */
  sampleSize: 128,
  /** Pixels per latent cell (two stride-2 stages in the VAE). */
  vaeScaleFactor: 4,
  latentChannels: 4,
  /** Latent side: sampleSize / vaeScaleFactor. */
  latentSize: 32,
  vaeScalingFactor: 0.18215,
  /** Text encoder width (encoder_hidden_states' last dimension). */
  textEmbedDim: 64,
  maxTokens: 77,
  textEncoder: { layers: 2, heads: 2, intermediateSize: 256 },
  unet: {
    blockOutChannels: [32, 64, 64],
    layersPerBlock: 1,
    /** Attention heads in every transformer block (head dim 16 at 32 channels, 32 at 64). */
    heads: 2,
    normGroups: 8,
    timeEmbedDim: 128,
    /** Latent sides of the cross-attention layers: down_blocks.0..2 and up_blocks.2..0. */
    crossAttentionSizes: [32, 16, 8],
    /** Side of mid_block (which also has one cross-attention layer). */
    midBlockSize: 8,
  },
  vae: { blockOutChannels: [16, 32, 32], layersPerBlock: 1, normGroups: 8 },
} as const;
