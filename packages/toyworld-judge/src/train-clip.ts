/**
 * Trains the toy CLIP (both towers, one graph, one AdamW) on fresh renders and their captions, and writes its
 * folder in the layout `--clip` loads, with metrics.json, MODEL_CARD.md and train-log.jsonl.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { DataType, TrainingSession } from '@dynasyn/ort-training';
import { buildClipTrainingNet, CLIP_IMAGE_SIZE, clipDims, type ClipDims } from './clip-net.js';
import { clipBatch, clipTokenizerFiles, ToyClip, writeClipFolder } from './clip.js';
import { evaluateClip, type ClipEvaluation } from './evaluate-clip.js';
import { clipModelCard } from './model-card.js';
import { parameterCount, type Weights } from './nn.js';
import { createOptimizer, loggedMinutes, trainLoop } from './train-loop.js';
import { trimLog, type TrainRunOptions, type TrainRunResult } from './train-judge.js';

export interface ClipMetrics {
  parameters: number;
  steps: number;
  batch: number;
  /** Minutes the training steps took (train-log.jsonl), on the machine and load of the run. */
  trainMinutes: number;
  threads: number;
  logitScale: number;
  ordinary?: ClipEvaluation;
  heldOut?: ClipEvaluation;
}

export async function trainClipWeights(
  o: TrainRunOptions,
  dimsOverride: Partial<ClipDims> = {},
): Promise<TrainRunResult & { dims: ClipDims; tokenizer: ReturnType<typeof clipTokenizerFiles> }> {
  const B = o.batch,
    S = CLIP_IMAGE_SIZE;
  mkdirSync(o.work, { recursive: true });
  const files = clipTokenizerFiles(o.seed);
  const tokenizer = new ClipTokenizer(files);
  const d = clipDims(tokenizer.vocabSize, dimsOverride);
  const T = d.context;
  const net = buildClipTrainingNet(B, d, `${o.seed}/clip-init`);
  const session = await TrainingSession.create({
    model: net.model('dynasyn-toyworld-clip'),
    loss: 'loss',
    trainable: net.params,
    keepOutputs: ['logit_scale_out'],
    cacheDir: join(o.work, 'graph-cache'),
    sessionOptions: { intraOpNumThreads: o.threads, interOpNumThreads: 1 },
  });
  const optimizer = createOptimizer({ lr: o.lr, steps: o.steps, warmup: Math.min(50, Math.ceil(o.steps / 10)) });
  const logFile = join(o.work, 'train-log.jsonl');
  const t0 = Date.now();
  const next = await trainLoop({
    session,
    optimizer,
    steps: o.steps,
    checkpointFile: join(o.work, 'checkpoint.safetensors'),
    logFile,
    ...(o.checkpointMinutes !== undefined ? { checkpointMinutes: o.checkpointMinutes } : {}),
    ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
    ...(o.stopAfter !== undefined ? { stopAfter: o.stopAfter } : {}),
    onStep: o.onStep,
    onResume: (start) => {
      trimLog(logFile, start);
      o.onStart?.(o.steps, start);
    },
    batchAt: (step) => {
      const b = clipBatch(tokenizer, d, o.seed, step, B);
      return {
        pixel_values: { dtype: DataType.FLOAT, dims: [B, 3, S, S], data: b.pixels },
        input_ids: { dtype: DataType.INT64, dims: [B, T], data: b.ids },
        attention_mask: { dtype: DataType.INT64, dims: [B, T], data: b.mask },
        targets: { dtype: DataType.FLOAT, dims: [B, B], data: b.targets },
      };
    },
  });
  const weights: Weights = new Map(net.params.map((p) => [p, session.getTrainable(p)]));
  await session.release();
  return { finished: next >= o.steps, nextStep: next, weights, minutes: (Date.now() - t0) / 60_000, dims: d, tokenizer: files };
}

/** Trains (or resumes) the CLIP; once finished writes and evaluates its folder. */
export async function trainClip(o: TrainRunOptions): Promise<{ finished: boolean; metrics?: ClipMetrics }> {
  const run = await trainClipWeights(o);
  if (!run.finished) return { finished: false };
  writeClipFolder(o.out, run.dims, run.weights, run.tokenizer);
  copyFileSync(join(o.work, 'train-log.jsonl'), join(o.out, 'train-log.jsonl'));
  const metrics: ClipMetrics = {
    parameters: parameterCount(run.weights),
    steps: o.steps,
    batch: o.batch,
    trainMinutes: loggedMinutes(join(o.work, 'train-log.jsonl')),
    threads: o.threads,
    logitScale: Math.exp(run.weights.get('logit_scale')!.data[0] as number),
  };
  if (o.evalCount > 0) {
    const clip = await ToyClip.load(o.out, { threads: o.threads });
    o.onEval?.('ordinary', 0, 2);
    metrics.ordinary = await evaluateClip(clip, { count: o.evalCount, seed: `${o.seed}/eval`, heldOut: 'exclude' });
    o.onEval?.('held-out', 1, 2);
    metrics.heldOut = await evaluateClip(clip, { count: o.evalCount, seed: `${o.seed}/eval`, heldOut: 'only' });
    o.onEval?.('held-out', 2, 2);
    await clip.release();
  }
  writeFileSync(join(o.out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  writeFileSync(join(o.out, 'MODEL_CARD.md'), clipModelCard(metrics, run.dims, o));
  return { finished: true, metrics };
}
