/**
 * Training checkpoints: one file, `checkpoint.safetensors` in the checkpoint directory, replaced
 * atomically. ort-training's saveCheckpoint holds the trainables and the AdamW state bit-exactly; the
 * metadata adds where the run stands (phase, steps done), the metrics so far, the "before" alignment and
 * a key of everything the run depends on. No RNG state is saved: every step draws from
 * `rng.fork(step-<phase>-<step>)`, a function of the seed alone, so a resumed run continues exactly.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint, readSafetensors, saveCheckpoint, type AdamW, type HostTensor, type TrainableStore } from '@dynasyn/ort-training';
import type { AugmentedExample, PersonalizationInput, StepMetrics, TrainOptions } from '../types.js';
import type { AlignmentSnapshot } from './alignment.js';
import { TrainingError } from './errors.js';

const FORMAT = 'dynasyn/train-checkpoint/1';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** One training step's numbers (metrics.json rows). */
export type TrainMetricsRow = StepMetrics;

/** Where a saved run stands. */
export interface CheckpointState {
  phase: 1 | 2;
  /** Steps done in `phase`. */
  step: number;
  metrics: TrainMetricsRow[];
  before: AlignmentSnapshot | undefined;
}

/** A hash of what a run's results depend on: seed, options, image, masks, class words, augmented set, backbone. */
export function runKey(parts: {
  seed: number;
  options: TrainOptions;
  input: PersonalizationInput;
  augmented: readonly AugmentedExample[];
  backbone: string;
}): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ seed: parts.seed, options: parts.options, backbone: parts.backbone, classes: parts.input.subjects.map((s) => s.classWord) }));
  h.update(parts.input.image.data);
  for (const s of parts.input.subjects) h.update(s.mask.data);
  for (const a of parts.augmented) {
    h.update(JSON.stringify([a.prompt, a.subjects]));
    h.update(a.image.data);
    for (const m of a.masks) h.update(m.data);
  }
  return h.digest('hex');
}

const snapshotToJson = (s: AlignmentSnapshot | undefined): unknown =>
  s && { ...s, placeholders: s.placeholders.map((p) => ({ ...p, map: Array.from(p.map) })) };

function snapshotFromJson(v: unknown): AlignmentSnapshot | undefined {
  if (!v) return undefined;
  const s = v as AlignmentSnapshot & { placeholders: { map: number[] }[] };
  return { ...s, placeholders: s.placeholders.map((p) => ({ ...p, map: Float32Array.from(p.map) })) } as AlignmentSnapshot;
}

export function writeTrainCheckpoint(dir: string, key: string, store: TrainableStore, optimizer: AdamW, state: CheckpointState): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, CHECKPOINT_FILE);
  saveCheckpoint(file, store, optimizer, {
    dynasyn: FORMAT,
    runKey: key,
    phase: String(state.phase),
    phaseStep: String(state.step),
    metrics: JSON.stringify(state.metrics),
    before: JSON.stringify(snapshotToJson(state.before) ?? null),
  });
  return file;
}

/** The state of the checkpoint in `dir`, or undefined when there is none; BAD_CHECKPOINT when it is another run's. */
export function readTrainCheckpointState(dir: string | undefined, key: string): (CheckpointState & { file: string }) | undefined {
  if (!dir) return undefined;
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(file)) return undefined;
  let metadata: Record<string, string>;
  try {
    metadata = readSafetensors(file).metadata;
  } catch (e) {
    throw new TrainingError('BAD_CHECKPOINT', `checkpoint ${file} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (metadata.dynasyn !== FORMAT)
    throw new TrainingError('BAD_CHECKPOINT', `${file} is not a DynASyn training checkpoint (format ${metadata.dynasyn ?? 'missing'})`);
  if (metadata.runKey !== key) {
    throw new TrainingError(
      'BAD_CHECKPOINT',
      `checkpoint ${file} belongs to another run (different seed, options, image, masks or augmented set); use a fresh checkpoint directory`,
    );
  }
  const phase = Number(metadata.phase);
  if (phase !== 1 && phase !== 2) throw new TrainingError('BAD_CHECKPOINT', `checkpoint ${file} names phase ${metadata.phase}`);
  return {
    file,
    phase,
    step: Number(metadata.phaseStep),
    metrics: JSON.parse(metadata.metrics ?? '[]') as TrainMetricsRow[],
    before: snapshotFromJson(JSON.parse(metadata.before ?? 'null')),
  };
}

/** Restores trainables and optimizer state from `file` into `store` / `optimizer`. */
export const restoreTrainCheckpoint = (file: string, store: TrainableStore, optimizer: AdamW): void => {
  loadCheckpoint(file, store, optimizer);
};

/** A trainable's value as saved in a checkpoint (e.g. the placeholder rows at the end of phase 1). */
export function checkpointTensor(file: string, name: string): HostTensor {
  const t = readSafetensors(file).tensors.get(`trainable/${name}`);
  if (!t) throw new TrainingError('BAD_CHECKPOINT', `checkpoint ${file} holds no trainable ${name}`);
  return t;
}
