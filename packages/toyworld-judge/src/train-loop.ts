/**
 * The training loop both models share: steps of one TrainingSession under AdamW (linear warmup, cosine decay
 * to a tenth), a batch that is a function of the step, a checkpoint (trainables + AdamW moments + next step)
 * every few minutes, at a deadline and at the end, and one JSON line per step in a log. A run started again
 * on the same checkpoint continues bit-exactly: the batches, the optimizer state and the schedule all
 * depend on the step number only. trainRun sets one model's run up around it (work folder, session, optimizer,
 * resume, log, progress) and finishRun / writeRunFiles end it, the same for the judge and the CLIP.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdamW, loadCheckpoint, saveCheckpoint, TrainingSession, type Feed, type OnnxModel } from '@dynasyn/ort-training';
import { parameterCount, type Weights } from './nn.js';

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  steps: number;
  warmup: number;
  /**
   * A warm restart: from update `at` on, a second cosine from `lr` down to a tenth of it over the remaining
   * steps. The steps before `at` follow the schedule of a run of `at` steps, so a finished run of `at` steps
   * resumes into the longer one exactly.
   */
  restart?: { at: number; lr: number };
}

/** lr(update number, 1-based): linear warmup, then cosine from the peak down to a tenth of it (and a restart). */
export function learningRate({ lr, steps, warmup, restart }: ScheduleOptions): (step: number) => number {
  const cosine = (peak: number, t: number) => peak * (0.1 + 0.45 * (1 + Math.cos(Math.PI * Math.min(1, t))));
  const firstSteps = restart ? restart.at : steps;
  return (step) => {
    const s = step - 1;
    if (restart && s >= restart.at) return cosine(restart.lr, (s - restart.at) / Math.max(1, steps - restart.at));
    if (s < warmup) return (lr * (s + 1)) / warmup;
    return cosine(lr, (s - warmup) / Math.max(1, firstSteps - warmup));
  };
}

export function createOptimizer(schedule: ScheduleOptions, weightDecay = 0.01): AdamW {
  return new AdamW({ lr: learningRate(schedule), weightDecay, maxGradNorm: 1 });
}

export interface StepLog {
  step: number;
  loss: number;
  terms: Record<string, number>;
  lr: number;
  gradNorm: number;
  ms: number;
}

export interface TrainLoopOptions {
  session: TrainingSession;
  optimizer: AdamW;
  steps: number;
  /** Feeds of step `step` (0-based). */
  batchAt(step: number): Record<string, Feed>;
  checkpointFile: string;
  /** One JSON line per step. */
  logFile?: string;
  /** Checkpoint at least this often (default 3 minutes). */
  checkpointMinutes?: number;
  /** Stop (checkpointed) once this time (ms since epoch) has passed. */
  deadline?: number;
  /** Stop (checkpointed) after this step, as if killed there (tests of resume). */
  stopAfter?: number;
  onStep?(log: StepLog): void;
  /** Called once with the step the run starts from (0, or the checkpoint's). */
  onResume?(start: number): void;
}

/** Step to start from: the checkpoint's next step when it exists (its values are loaded), else 0. */
export function resumeFrom(file: string, session: TrainingSession, optimizer: AdamW): number {
  if (!existsSync(file)) return 0;
  return Number(loadCheckpoint(file, session, optimizer).nextStep ?? 0);
}

/** Runs steps until `steps` or a stop; returns the next step (== steps when finished). */
export async function trainLoop(o: TrainLoopOptions): Promise<number> {
  mkdirSync(dirname(o.checkpointFile), { recursive: true });
  let step = resumeFrom(o.checkpointFile, o.session, o.optimizer);
  o.onResume?.(step);
  const every = (o.checkpointMinutes ?? 3) * 60_000;
  let saved = Date.now();
  const save = () => {
    saveCheckpoint(o.checkpointFile, o.session, o.optimizer, { nextStep: String(step) });
    saved = Date.now();
  };
  while (step < o.steps) {
    const t0 = Date.now();
    const r = await o.session.trainStep(o.batchAt(step), o.optimizer);
    const terms: Record<string, number> = {};
    for (const [k, v] of r.outputs) terms[k] = Number(v.data[0]);
    const log: StepLog = { step, loss: r.loss, terms, lr: r.update.lr, gradNorm: r.update.gradNorm, ms: Date.now() - t0 };
    step++;
    if (o.logFile) appendFileSync(o.logFile, JSON.stringify(log) + '\n');
    o.onStep?.(log);
    const stop = (o.deadline !== undefined && Date.now() > o.deadline) || (o.stopAfter !== undefined && step > o.stopAfter);
    if (step === o.steps || stop || Date.now() - saved > every) save();
    if (stop) break;
  }
  return step;
}

/** Minutes the logged steps took (data, forward, backward, update), over every invocation of a run. */
export function loggedMinutes(logFile: string): number {
  if (!existsSync(logFile)) return 0;
  return (
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .reduce((s, l) => s + (JSON.parse(l) as StepLog).ms, 0) / 60_000
  );
}

/** One model's training run, as the CLI gives it. */
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
  /** A warm restart of the learning-rate schedule (ScheduleOptions.restart): the judge's; the CLIP's run takes none. */
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

/** What a model brings to a run: its training graph (output `loss`) and the batch of each step. */
export interface TrainRunSpec {
  model: OnnxModel;
  trainable: string[];
  /** Outputs kept beside the loss: each step's log has them as terms. */
  keepOutputs: string[];
  /** Feeds of step `step` (0-based). */
  batchAt(step: number): Record<string, Feed>;
  /** A warm restart of the schedule; none when absent. */
  restart?: { at: number; lr: number };
}

/** Drops log lines of steps at or after `from` (a resumed run writes them again). */
export function trimLog(file: string, from: number): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && (JSON.parse(l) as StepLog).step < from);
  writeFileSync(file, lines.map((l) => l + '\n').join(''));
}

const logFileOf = (o: Pick<TrainRunOptions, 'work'>) => join(o.work, 'train-log.jsonl');

/**
 * Trains (or resumes) one model in `o.work`: its session (graph cache in graph-cache/), AdamW with a warmup of
 * a tenth of the first cosine's steps (at most 50), resumed from checkpoint.safetensors, one line per step in
 * train-log.jsonl (the lines of steps a resume repeats dropped first), progress through o.onStart and o.onStep.
 */
export async function trainRun(o: TrainRunOptions, spec: TrainRunSpec): Promise<TrainRunResult> {
  mkdirSync(o.work, { recursive: true });
  const session = await TrainingSession.create({
    model: spec.model,
    loss: 'loss',
    trainable: spec.trainable,
    keepOutputs: spec.keepOutputs,
    cacheDir: join(o.work, 'graph-cache'),
    sessionOptions: { intraOpNumThreads: o.threads, interOpNumThreads: 1 },
  });
  const warmup = Math.min(50, Math.ceil((spec.restart?.at ?? o.steps) / 10));
  const optimizer = createOptimizer({ lr: o.lr, steps: o.steps, warmup, ...(spec.restart ? { restart: spec.restart } : {}) });
  const logFile = logFileOf(o);
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
    batchAt: spec.batchAt,
  });
  const weights: Weights = new Map(spec.trainable.map((p) => [p, session.getTrainable(p)]));
  await session.release();
  return { finished: next >= o.steps, nextStep: next, weights, minutes: (Date.now() - t0) / 60_000 };
}

/** The figures every model's metrics.json starts with. */
export interface RunMetrics {
  parameters: number;
  steps: number;
  batch: number;
  /** Minutes the training steps took (train-log.jsonl), on the machine and load of the run. */
  trainMinutes: number;
  threads: number;
}

/** A finished run: its train-log.jsonl copied into the model's folder (written by then) and its figures. */
export function finishRun(o: TrainRunOptions, weights: Weights): RunMetrics {
  copyFileSync(logFileOf(o), join(o.out, 'train-log.jsonl'));
  return { parameters: parameterCount(weights), steps: o.steps, batch: o.batch, trainMinutes: loggedMinutes(logFileOf(o)), threads: o.threads };
}

/** The model's metrics.json and MODEL_CARD.md. */
export function writeRunFiles(o: Pick<TrainRunOptions, 'out'>, metrics: RunMetrics, modelCard: string): void {
  writeFileSync(join(o.out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  writeFileSync(join(o.out, 'MODEL_CARD.md'), modelCard);
}
