export {
  withPlaceholderEmbeddings,
  placeholderStartValues,
  findTokenEmbedding,
  PLACEHOLDER_INPUT,
  type PlaceholderOptions,
  type PlaceholderTextEncoder,
  type TokenEmbeddingInfo,
} from './placeholders.js';
export {
  withAttentionCapture,
  findCrossAttentionLayers,
  ATTENTION_OUTPUT,
  type AttentionCaptureOptions,
  type AttentionCaptureModel,
  type CrossAttentionLayer,
  type UNetBlock,
  type UNetInputNames,
} from './attention.js';
export { withIdsOnlyInputs, extraTextInputs } from './text-inputs.js';
export { withFloat32Compute, usesFloat16 } from './precision.js';
export { withoutSampling, randomNodes } from './deterministic.js';
