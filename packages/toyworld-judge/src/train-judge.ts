/**
 * Trains the judge (classifier + finder, one graph, one AdamW) on fresh renders and writes its folder:
 * classifier.onnx, finder.onnx, judge.json, metrics.json, MODEL_CARD.md, train-log.jsonl.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, TrainingSession, type HostTensor } from '@dynasyn/ort-training';
import { FINDER_CLASSES, FINDER_GRID, LOGITS } from './heads.js';
import { judgeBatch } from './judge-data.js';
import { buildJudgeTrainingNet, CROP, IMAGE_SIZE, JUDGE_WIDTHS, type JudgeWidths } from './judge-net.js';
import { ToyworldJudge, writeJudgeFolder } from './judge.js';
import { evaluateJudge, type JudgeEvaluation } from './evaluate.js';
import { judgeModelCard } from './model-card.js';
import { parameterCount, type Weights } from './nn.js';
import { createOptimizer, loggedMinutes, trainLoop, type StepLog } from './train-loop.js';

export interface TrainRunOptions {
  seed: number;
  steps: number;
  batch: number;
  /** Peak learning rate. */
  lr: number;
  /** Checkpoint, log and graph cache. */
  work: string;
  /** The finished model's folder. */
  out: string;
  threads: number;
  /** Scenes per evaluation set (ordinary / held-out) once trained; 0 skips it. */
  evalCount: number;
  deadline?: number;
  stopAfter?: number;
  checkpointMinutes?: number;
  /** A warm restart of the learning-rate schedule (ScheduleOptions.restart). */
  restart?: { at: number; lr: number };
  onStart?(total: number, start: number): void;
  onStep?(log: StepLog): void;
  onEval?(label: string, done: number, total: number): void;
}

export interface TrainRunResult {
  finished: boolean;
  nextStep: number;
  weights: Weights;
  minutes: number;
}

export interface JudgeMetrics {
  parameters: number;
  steps: number;
  batch: number;
  /** Minutes the training steps took (train-log.jsonl), on the machine and load of the run. */
  trainMinutes: number;
  threads: number;
  restart?: { at: number; lr: number };
  evaluations: { heldOut: 'exclude' | 'only'; regions: 'masks' | 'judge'; result: JudgeEvaluation }[];
}

/** Drops log lines of steps at or after `from` (a resumed run writes them again). */
export function trimLog(file: string, from: number): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && (JSON.parse(l) as StepLog).step < from);
  writeFileSync(file, lines.map((l) => l + '\n').join(''));
}

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: DataType.FLOAT, dims, data });

export async function trainJudgeWeights(o: TrainRunOptions, widths: JudgeWidths = JUDGE_WIDTHS): Promise<TrainRunResult> {
  const B = o.batch,
    S = IMAGE_SIZE,
    G = FINDER_GRID;
  mkdirSync(o.work, { recursive: true });
  const net = buildJudgeTrainingNet(B, `${o.seed}/judge-init`, undefined, widths);
  const session = await TrainingSession.create({
    model: net.model('dynasyn-toyworld-judge'),
    loss: 'loss',
    trainable: net.params,
    keepOutputs: ['loss_cls', 'loss_find'],
    cacheDir: join(o.work, 'graph-cache'),
    sessionOptions: { intraOpNumThreads: o.threads, interOpNumThreads: 1 },
  });
  const warmup = Math.min(50, Math.ceil((o.restart?.at ?? o.steps) / 10));
  const optimizer = createOptimizer({ lr: o.lr, steps: o.steps, warmup, ...(o.restart ? { restart: o.restart } : {}) });
  const checkpointFile = join(o.work, 'checkpoint.safetensors'),
    logFile = join(o.work, 'train-log.jsonl');
  const t0 = Date.now();
  const next = await trainLoop({
    session,
    optimizer,
    steps: o.steps,
    checkpointFile,
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
      const b = judgeBatch(o.seed, step, B);
      return {
        image: f32([B, 3, S, S], b.image),
        crop: f32([B, 4, CROP, CROP], b.crop),
        scene: f32([B, 5, CROP, CROP], b.scene),
        targets: f32([B, LOGITS], b.targets),
        cells: f32([B, FINDER_CLASSES.length, G, G], b.cells),
      };
    },
  });
  const weights: Weights = new Map(net.params.map((p) => [p, session.getTrainable(p)]));
  await session.release();
  return { finished: next >= o.steps, nextStep: next, weights, minutes: (Date.now() - t0) / 60_000 };
}

/** Trains (or resumes) the judge; once finished writes and evaluates its folder. */
export async function trainJudge(o: TrainRunOptions): Promise<{ finished: boolean; metrics?: JudgeMetrics }> {
  const run = await trainJudgeWeights(o);
  if (!run.finished) return { finished: false };
  writeJudgeFolder(o.out, run.weights);
  copyFileSync(join(o.work, 'train-log.jsonl'), join(o.out, 'train-log.jsonl'));
  const metrics: JudgeMetrics = {
    parameters: parameterCount(run.weights),
    steps: o.steps,
    batch: o.batch,
    trainMinutes: loggedMinutes(join(o.work, 'train-log.jsonl')),
    threads: o.threads,
    ...(o.restart ? { restart: o.restart } : {}),
    evaluations: [],
  };
  if (o.evalCount > 0) {
    const judge = await ToyworldJudge.load(o.out, { threads: o.threads });
    for (const heldOut of ['exclude', 'only'] as const)
      for (const regions of ['masks', 'judge'] as const) {
        const label = `${heldOut === 'only' ? 'held-out' : 'ordinary'} / ${regions === 'masks' ? 'true masks' : 'own finder'}`;
        const result = await evaluateJudge(judge, {
          count: o.evalCount,
          seed: `${o.seed}/eval`,
          heldOut,
          regions,
          onScene: (i) => o.onEval?.(label, i + 1, o.evalCount),
        });
        metrics.evaluations.push({ heldOut, regions, result });
      }
    await judge.release();
  }
  writeFileSync(join(o.out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  writeFileSync(join(o.out, 'MODEL_CARD.md'), judgeModelCard(metrics, o));
  return { finished: true, metrics };
}
