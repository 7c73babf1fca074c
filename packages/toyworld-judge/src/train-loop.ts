/**
 * The training loop both models share: steps of one TrainingSession under AdamW (linear warmup, cosine decay
 * to a tenth), a batch that is a function of the step, a checkpoint (trainables + AdamW moments + next step)
 * every few minutes, at a deadline and at the end, and one JSON line per step in a log. A run started again
 * on the same checkpoint continues bit-exactly: the batches, the optimizer state and the schedule all
 * depend on the step number only.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AdamW, loadCheckpoint, saveCheckpoint, type Feed, type TrainingSession } from '@dynasyn/ort-training';

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
