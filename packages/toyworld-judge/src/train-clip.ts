/**
 * Trains the toy CLIP (both towers, one graph, one AdamW) on fresh renders and their captions, and writes its
 * folder in the layout `--clip` loads, with metrics.json, MODEL_CARD.md and train-log.jsonl.
 */
import { ClipTokenizer } from '@dynasyn/diffusion';
import { DataType } from '@dynasyn/ort-training';
import { buildClipTrainingNet, CLIP_IMAGE_SIZE, clipDims, type ClipDims } from './clip-net.js';
import { clipBatch, clipTokenizerFiles, ToyClip, writeClipFolder } from './clip.js';
import { evaluateClip, type ClipEvaluation } from './evaluate-clip.js';
import { clipModelCard } from './model-card.js';
import { finishRun, trainRun, writeRunFiles, type RunMetrics, type TrainRunOptions, type TrainRunResult } from './train-loop.js';

export interface ClipMetrics extends RunMetrics {
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
  const files = clipTokenizerFiles(o.seed);
  const tokenizer = new ClipTokenizer(files);
  const d = clipDims(tokenizer.vocabSize, dimsOverride);
  const T = d.context;
  const net = buildClipTrainingNet(B, d, `${o.seed}/clip-init`);
  const run = await trainRun(o, {
    model: net.model('dynasyn-toyworld-clip'),
    trainable: net.params,
    keepOutputs: ['logit_scale_out'],
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
  return { ...run, dims: d, tokenizer: files };
}

/** Trains (or resumes) the CLIP; once finished writes and evaluates its folder. */
export async function trainClip(o: TrainRunOptions): Promise<{ finished: boolean; metrics?: ClipMetrics }> {
  const run = await trainClipWeights(o);
  if (!run.finished) return { finished: false };
  writeClipFolder(o.out, run.dims, run.weights, run.tokenizer);
  const metrics: ClipMetrics = {
    ...finishRun(o, run.weights),
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
  writeRunFiles(o, metrics, clipModelCard(metrics, run.dims, o));
  return { finished: true, metrics };
}
