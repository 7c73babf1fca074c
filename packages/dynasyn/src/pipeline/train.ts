/**
 * The train stage: phase 1 and 2 (METHOD.md) on the reference and the set in `augmented/`, resuming from
 * `checkpoints/`; then the learned concepts, the attention maps before and after, metrics.json and phases
 * `phase1`, `phase2`.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadAugmented } from '../augment/storage.js';
import {
  addManifestNotes,
  artifactPath,
  attentionVsMask,
  markPhaseCompleted,
  MetricsRecorder,
  readLearnedConcepts,
  summarizeMetrics,
  writeAttentionHeatmaps,
  writeLearnedConcepts,
  type MetricsSummary,
} from '../output/artifacts.js';
import { graphCacheDir } from '../train/graph-cache.js';
import { trainPersonalization, type TrainResult } from '../train/trainer.js';
import type { LearnedConcepts } from '../types.js';
import { completedPhases } from './prepare.js';
import { emitterOf, type StageRun } from './run.js';

/** The trainer's checkpoint file in `checkpoints/` (rewritten every `checkpointEvery` steps and at phase ends). */
const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface TrainStageRun extends StageRun {
  /** Derived training graphs, shared by runs on one backbone; default graphCacheDir(bundle) (ort-training's cache). */
  graphCacheDir?: string;
  /** Called with the checkpoint's path each time the trainer has rewritten it (seen after a step, and at the end). */
  onCheckpoint?: (file: string) => void;
}

export interface TrainStageResult {
  concepts: LearnedConcepts;
  /** What training returned; absent when the run directory held finished training already. */
  trained?: TrainResult;
  /** metrics.json summarized (the service keeps it on the personalization's row). */
  summary: MetricsSummary;
}

/** Trains the placeholders and adapters (a directory with finished training returns its concepts). */
export async function trainStage(run: TrainStageRun): Promise<TrainStageResult> {
  const { dir, bundle, input, options: o } = run;
  if (completedPhases(dir).includes('phase2') && existsSync(artifactPath(dir, 'embeddings'))) {
    return { concepts: readLearnedConcepts(dir), summary: summarizeMetrics(MetricsRecorder.open(dir).toJSON()) };
  }
  const emit = emitterOf(run);
  const augmented = await loadAugmented(artifactPath(dir, 'augmented'));
  const checkpointDir = artifactPath(dir, 'checkpoints');
  const watch = checkpointWatch(join(checkpointDir, CHECKPOINT_FILE), run.onCheckpoint);
  const metrics = MetricsRecorder.open(dir);
  let rows = 0;
  let trained: TrainResult;
  try {
    trained = await metrics.time('train', () =>
      trainPersonalization({
        bundle,
        input,
        augmented,
        options: o.train,
        seed: o.seed,
        checkpointDir,
        // derived graphs are shared by the runs on this backbone: only the first derives them
        cacheDir: run.graphCacheDir ?? graphCacheDir(bundle.dir),
        executionProviders: o.executionProviders,
        ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
        ...(o.rowsPerPass !== undefined ? { rowsPerPass: o.rowsPerPass } : {}),
        onProgress: (e) => {
          watch();
          emit(e);
        },
        // metrics.json follows training, so an interrupted run still shows its losses
        onMetrics: (row) => {
          metrics.recordStep(row);
          if (++rows % 10 === 0) metrics.flush();
        },
        ...(run.signal ? { signal: run.signal } : {}),
      }),
    );
  } finally {
    watch(); // the checkpoint written at a phase end or on abort
    metrics.flush();
  }
  if (trained.notes.length) addManifestNotes(dir, trained.notes);
  for (const row of trained.metrics) metrics.recordStep(row); // steps done before a resume, too
  writeLearnedConcepts(dir, trained.concepts);
  const {
    grid: [gh, gw],
    before,
    after,
  } = trained.alignment;
  for (const [when, snap] of [
    ['before', before],
    ['after', after],
  ] as const) {
    await writeAttentionHeatmaps(
      dir,
      when,
      input.image,
      snap.placeholders.map((p) => p.map),
      gh,
      gw,
    );
    metrics.setAttention(
      when,
      snap.placeholders.map((p, i) => attentionVsMask(p.token, p.map, gh, gw, input.subjects[i]!.mask)),
    );
  }
  metrics.flush();
  markPhaseCompleted(dir, 'phase1');
  markPhaseCompleted(dir, 'phase2');
  return { concepts: trained.concepts, trained, summary: summarizeMetrics(metrics.toJSON()) };
}

/** A poll that calls `onChange(file)` when the file's mtime moved since the last poll (or since the start). */
function checkpointWatch(file: string, onChange: ((file: string) => void) | undefined): () => void {
  if (!onChange) return () => {};
  const mtime = () => (existsSync(file) ? statSync(file).mtimeMs : 0);
  let seen = mtime();
  return () => {
    const m = mtime();
    if (m === 0 || m === seen) return;
    seen = m;
    onChange(file);
  };
}
