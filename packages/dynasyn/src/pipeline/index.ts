/** The stages of one personalization as functions on a run directory: personalize() and the service both run these. */
export { cacheDirOf, runtimeOf, type StageRun } from './run.js';
export { completedPhases, prepareStage } from './prepare.js';
export { augmentOnBase, augmentStage, composeOnBase, gsaOnBase, gsaStage, holdsSet, type BaseRunOptions } from './augment.js';
export { trainStage, type TrainStageResult, type TrainStageRun } from './train.js';
export {
  evaluateStage,
  initialSamplePrompts,
  openConceptSampler,
  reportStage,
  sampleStage,
  type ConceptSampler,
  type SampleRequestItem,
  type SampleStageRun,
} from './sample.js';
