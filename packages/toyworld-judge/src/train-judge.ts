/**
 * Trains the judge (classifier + finder, one graph, one AdamW) on fresh renders and writes its folder:
 * classifier.onnx, finder.onnx, judge.json, metrics.json, MODEL_CARD.md, train-log.jsonl.
 */
import { DataType, type HostTensor } from '@dynasyn/ort-training';
import { withCleanup } from '@dynasyn/domain';
import { FINDER_CLASSES, FINDER_GRID, LOGITS } from './heads.js';
import { judgeBatch } from './judge-data.js';
import { buildJudgeTrainingNet, CROP, IMAGE_SIZE, JUDGE_WIDTHS, type JudgeWidths } from './judge-net.js';
import { ToyworldJudge, writeJudgeFolder } from './judge.js';
import { evaluateJudge, judgeLeniency, type JudgeEvaluation, type Leniency } from './evaluate.js';
import { judgeModelCard } from './model-card.js';
import { finishRun, trainRun, writeRunFiles, type RunMetrics, type TrainRunOptions, type TrainRunResult } from './train-loop.js';

export interface JudgeMetrics extends RunMetrics {
  /** The run's seed and peak lr (absent in folders written before they were recorded). */
  seed?: number;
  lr?: number;
  restart?: { at: number; lr: number };
  evaluations: { heldOut: 'exclude' | 'only'; regions: 'masks' | 'judge'; result: JudgeEvaluation }[];
  /** Wrong values asked, on the ordinary set's scenes (judgeLeniency); absent in folders measured before. */
  leniency?: { heldOut: 'exclude' | 'only'; regions: 'masks' | 'judge'; result: Leniency }[];
}

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: DataType.FLOAT, dims, data });

export async function trainJudgeWeights(o: TrainRunOptions, widths: JudgeWidths = JUDGE_WIDTHS): Promise<TrainRunResult> {
  const B = o.batch,
    S = IMAGE_SIZE,
    G = FINDER_GRID;
  const net = buildJudgeTrainingNet(B, `${o.seed}/judge-init`, undefined, widths);
  return trainRun(o, {
    model: net.model('dynasyn-toyworld-judge'),
    trainable: net.params,
    keepOutputs: ['loss_cls', 'loss_find'],
    ...(o.restart ? { restart: o.restart } : {}),
    batchAt: (step) => {
      const b = judgeBatch(o.seed, step, B);
      return {
        image: f32([B, 3, S, S], b.image),
        crop: f32([B, 4, CROP, CROP], b.crop),
        scene: f32([B, 5, CROP, CROP], b.scene),
        patch: f32([B, 4, CROP, CROP], b.patch),
        targets: f32([B, LOGITS], b.targets),
        cells: f32([B, FINDER_CLASSES.length, G, G], b.cells),
      };
    },
  });
}

/** Trains (or resumes) the judge; once finished writes and evaluates its folder. */
export async function trainJudge(o: TrainRunOptions): Promise<{ finished: boolean; metrics?: JudgeMetrics }> {
  const run = await trainJudgeWeights(o);
  if (!run.finished) return { finished: false };
  writeJudgeFolder(o.out, run.weights);
  const metrics = {
    ...finishRun(o, run.weights),
    seed: o.seed,
    lr: o.lr,
    ...(o.restart ? { restart: o.restart } : {}),
    evaluations: [],
  };
  return { finished: true, metrics: await evaluateJudgeFolder(o, metrics) };
}

/**
 * Measures a judge folder's accuracies on fresh renders (ordinary and held-out identities, true masks and its own
 * finder; `evalCount` scenes each, none when 0) with the scoring code as it is now, and writes them with the run's
 * figures to its metrics.json and MODEL_CARD.md. `trainJudge` calls it once trained; `toyworld-judge --reevaluate`
 * calls it alone, after the region logic changed, so the card reads what the code does.
 */
export async function evaluateJudgeFolder(
  o: Pick<TrainRunOptions, 'out' | 'threads' | 'evalCount' | 'onEval'>,
  metrics: JudgeMetrics & { seed: number; lr: number },
): Promise<JudgeMetrics> {
  const evaluations: JudgeMetrics['evaluations'] = [];
  const leniency: NonNullable<JudgeMetrics['leniency']> = [];
  if (o.evalCount > 0) {
    const judge = await ToyworldJudge.load(o.out, { threads: o.threads });
    const measure = async () => {
      for (const heldOut of ['exclude', 'only'] as const)
        for (const regions of ['masks', 'judge'] as const) {
          const label = `${heldOut === 'only' ? 'held-out' : 'ordinary'} / ${regions === 'masks' ? 'true masks' : 'own finder'}`;
          const result = await evaluateJudge(judge, {
            count: o.evalCount,
            seed: `${metrics.seed}/eval`,
            heldOut,
            regions,
            onScene: (i) => o.onEval?.(label, i + 1, o.evalCount),
          });
          evaluations.push({ heldOut, regions, result });
        }
      for (const regions of ['masks', 'judge'] as const) {
        const label = `ordinary / ${regions === 'masks' ? 'true masks' : 'own finder'}, wrong values asked`;
        const result = await judgeLeniency(judge, {
          count: o.evalCount,
          seed: `${metrics.seed}/eval`,
          heldOut: 'exclude',
          regions,
          onScene: (i) => o.onEval?.(label, i + 1, o.evalCount),
        });
        leniency.push({ heldOut: 'exclude', regions, result });
      }
    };
    await withCleanup(measure, () => [() => judge.release()]); // a release failure never replaces the run's error
  }
  const out = { ...metrics, evaluations, ...(leniency.length ? { leniency } : {}) };
  writeRunFiles(o, out, judgeModelCard(out, metrics));
  return out;
}
