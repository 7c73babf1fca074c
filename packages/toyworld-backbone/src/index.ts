export {
  trainToyBackbone,
  latentScalingFactor,
  type TrainOptions,
  type TrainResult,
  readBundleLog,
  BUNDLE_LOG,
  type PhaseOptions,
  type Phase,
} from './train.js';
export { toyBundleConfig, MAX_POSITIONS, type ToyPreset } from './config.js';
export { learnCaptionTokenizer, captionWords, vocabSize } from './tokenizer.js';
export { batchAt, stackImages, type Example, type ExampleSource } from './data.js';
export { toyworldSource } from './toyworld-source.js';
export { syntheticShapesSource } from './synthetic-source.js';
export { VaeTrainer, type VaeTrainerOptions, type PhaseStepLog } from './vae-trainer.js';
export { DiffusionTrainer, type DiffusionTrainerOptions } from './diffusion-trainer.js';
export { ModelGroup, type GroupPart } from './model-group.js';
export { createInitialBundle, writeWeights, writeBundleFiles, MODELS, type BundleModel } from './bundle-io.js';
