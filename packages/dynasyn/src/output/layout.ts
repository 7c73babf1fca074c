/**
 * The layout of a personalization's output directory: every part of the package writes and reads through
 * these names, so the CLI, the service and the report agree on where each artifact lives.
 */
import { join } from 'node:path';

export const ARTIFACTS = {
  manifest: 'manifest.json',
  /** Placeholder rows [N, D]; metadata `tokens`, `classWords` (JSON arrays). */
  embeddings: 'embeddings.safetensors',
  /** LoRA A/B (or full-mode) tensors; metadata `adapterSpec` (JSON AdapterSpec[]). */
  adapters: 'adapters.safetensors',
  /** The reference image and its subject masks at backbone size (`reference.png`, `mask_<i>.png`). */
  input: 'input',
  /** The composed set before GSA, in the augmented set's format marked `"stage": "composed"`. */
  composed: 'composed',
  /** The augmented set, written by augment/storage.ts saveAugmented (`augmented.json` + images and masks). */
  augmented: 'augmented',
  augmentedIndex: 'augmented/augmented.json',
  /** `samples/NNN.png` and their settings in samples.json. */
  samples: 'samples',
  samplesIndex: 'samples.json',
  metrics: 'metrics.json',
  /** Heatmaps of each placeholder's cross-attention: `before_<i>.png`, `after_<i>.png`. */
  attention: 'attention',
  report: 'report.html',
  checkpoints: 'checkpoints',
} as const;

export type ArtifactName = keyof typeof ARTIFACTS;

/** Absolute path of an artifact of the output directory `dir`. */
export const artifactPath = (dir: string, name: ArtifactName): string => join(dir, ARTIFACTS[name]);

export const referencePath = (dir: string): string => join(dir, ARTIFACTS.input, 'reference.png');
export const inputMaskPath = (dir: string, subject: number): string => join(dir, ARTIFACTS.input, `mask_${subject}.png`);
export const sampleFileName = (index: number): string => `${ARTIFACTS.samples}/${String(index).padStart(3, '0')}.png`;
export const attentionHeatmapPath = (dir: string, when: 'before' | 'after', placeholder: number): string =>
  join(dir, ARTIFACTS.attention, `${when}_${placeholder}.png`);
