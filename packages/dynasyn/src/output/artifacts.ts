/**
 * The output directory of a personalization, one module for every part of the package (trainer, sampler,
 * CLI, service, report): layout, manifest, learned concepts, metrics, images.
 */
export { ARTIFACTS, artifactPath, attentionHeatmapPath, inputMaskPath, referencePath, sampleFileName, type ArtifactName } from './layout.js';
export { ArtifactError, isArtifactError, type ArtifactErrorCode } from './errors.js';
export {
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  bundleHasRandomWeights,
  createManifest,
  fingerprintBackbone,
  fingerprintDifferences,
  addManifestNotes,
  markPhaseCompleted,
  packageVersions,
  readManifest,
  writeManifest,
  type BackboneFingerprint,
  type CompletedPhase,
  type Manifest,
  type NewManifestInput,
} from './manifest.js';
export { EMBEDDINGS_TENSOR, readLearnedConcepts, writeLearnedConcepts, type ReadConceptsOptions } from './concepts.js';
export {
  LOSS_TERMS,
  MetricsRecorder,
  SUMMARY_WINDOW,
  attentionVsMask,
  readMetrics,
  summarizeMetrics,
  type AttentionVsMask,
  type CategoryScores,
  type EvaluationSummary,
  type LossMeans,
  type MetricsFile,
  type MetricsSummary,
  type StepMetrics,
} from './metrics.js';
export {
  readAugmentedIndex,
  readInputs,
  readSamples,
  writeAttentionHeatmaps,
  writeInputs,
  writeSampleMetrics,
  writeSamples,
  type AugmentedEntry,
  type GeneratedSample,
  type SampleEntry,
  type SampleMetrics,
} from './images.js';
export { readJsonObject, writeJsonAtomic } from './json-file.js';
