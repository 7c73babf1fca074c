/** The DynASyn training graph: composition, losses, adapters, the frozen class-map graph. */
export { buildTrainingModel, DEFAULT_ADAPTERS, type TrainingModel, type TrainingModelOptions, type TrainingInputs } from './training-model.js';
export { buildClassMapModel, classMapTarget, type ClassMapModel, type ClassMapModelOptions } from './class-map.js';
export { adapterTargets, addTrainableAdapters, applyAdapters, type AdapterTarget, type AdaptedModel, type AddAdaptersOptions } from './adapters.js';
export { LOSS_INPUTS, LOSS_OUTPUTS, NORMALIZE_EPS, appendLossSubgraph, type LossSubgraphOptions } from './losses.js';
export * from './losses-reference.js';
export { COMPOSED_NAMES, composeEncoderUnet, type TensorSpec, type ComposedModel } from './encoder-unet.js';
export { mergeModels, type GraphPart } from './compose.js';
export { hasExternalData, modelSource, saveGraphModel } from './save.js';
