export {
  CLASSES,
  COLOURS,
  COLOUR_RGB,
  PATTERNS,
  ACCESSORIES,
  ACTIONS,
  INTERACTIONS,
  CONTEXTS,
  STYLES,
  FACINGS,
  identityKey,
  type ClassName,
  type ColourName,
  type PatternName,
  type AccessoryName,
  type ActionName,
  type InteractionName,
  type ContextName,
  type StyleName,
  type Facing,
  type Identity,
} from './vocab.js';
export { createRng, hashText, toRng, type Rng } from './prng.js';
export { parseSceneSpec, sceneSpecSchema, subjectSpecSchema, canonicalJson, type SceneSpec, type SubjectSpec, type SceneLayout } from './spec.js';
export { renderScene, type RenderOptions, type RenderedScene, type SceneLabels, type SubjectLabels, type PixelBox } from './render.js';
export { captionFor, captionsFor, describeSubject, parseCaption, type CaptionOptions, type MentionedLabels, type MentionedSubject } from './captions.js';
export { sampleSceneSpec, datasetSceneSpec, HELD_OUT_IDENTITIES, isHeldOut, type SampleOptions } from './sample.js';
export { ToyworldError, isToyworldError, TOYWORLD_CODES } from './errors.js';
export { encodePng, encodeMaskPng } from './png.js';
export { contactSheet } from './sheet.js';
export { writeDataset, writeSceneFiles, DATASET_FORMAT, type DatasetEntry, type DatasetOptions } from './dataset.js';
