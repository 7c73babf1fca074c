export { DiffusionPipeline, type PipelineOptions, type SampleOptions, type ImageToImageOptions, type InpaintOptions, type SampleResult } from './pipeline.js';
export { combineGuided, doubleBatch, usesGuidance } from './guidance.js';
export { BatchNoise, seedsFor } from './noise.js';
export { denoise, type ProgressCallback, type DenoiseArgs, type DenoiseResult } from './denoise.js';
export { imagesToTensor, tensorToImages, maskToLatentGrid, type RgbPixels, type MaskPixels } from './images.js';
