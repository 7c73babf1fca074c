/**
 * metrics.json: every loss term of every training step, time spent per stage, how well each placeholder's
 * attention matches its mask before and after training, and the evaluation summary. Written atomically
 * so the service and a browser can read it while a run is going.
 */
import { existsSync } from 'node:fs';
import { resizeMask } from '@dynasyn/imaging';
import type { SubjectIdentity } from '../evaluate/scenes.js';
import type { Mask, StepMetrics } from '../types.js';
import { ArtifactError } from './errors.js';
import { readJsonObject, writeJsonAtomic } from './json-file.js';
import { artifactPath } from './layout.js';

export type { StepMetrics };

/** The loss terms charted and tabulated, in METHOD.md's order. */
export const LOSS_TERMS = ['md', 'm2a', 'ica', 'aug', 'total'] as const;

/** How one placeholder's cross-attention map agrees with its subject's mask. */
export interface AttentionVsMask {
  token: string;
  /** Share of the attention mass inside the mask (0..1; the mask's area share is what chance gives). */
  massInMask: number;
  /** IoU of the map thresholded at half its max with the mask. */
  iou: number;
  /** Area share of the mask on the attention grid, for reading massInMask. */
  maskShare: number;
}

/**
 * Mean scores of a group of samples: CLIP's (CLIP-I over samples with a subject), and with a judge its three
 * (each over the samples it applies to; null when none).
 */
export interface CategoryScores {
  count: number;
  clipT: number;
  clipI: number | null;
  identity?: number | null;
  attributes?: number | null;
  prompt?: number | null;
}

/** The evaluation: mean per prompt category and over all samples. */
export interface EvaluationSummary {
  /** The CLIP folder. */
  model: string;
  byCategory: Record<string, CategoryScores>;
  overall: CategoryScores;
  /**
   * With a toy-world judge: its folder, and each reference subject's identity as it read it inside the subject's
   * mask (what identity acc. and attributes kept compare samples with; absent for a judge that cannot read them).
   */
  judge?: { model: string; identities?: SubjectIdentity[] };
}

export interface MetricsFile {
  version: 1;
  steps: StepMetrics[];
  /** Milliseconds per stage (summed over repeated timings of the same stage). */
  timings: Record<string, number>;
  attention: { before?: AttentionVsMask[]; after?: AttentionVsMask[] };
  evaluation?: EvaluationSummary;
}

/**
 * Agreement of a cross-attention map `map[h*w]` (one placeholder, averaged over layers and heads) with a
 * subject mask of any size (resized to the grid by nearest neighbour).
 */
export function attentionVsMask(token: string, map: ArrayLike<number>, height: number, width: number, mask: Mask): AttentionVsMask {
  if (map.length !== height * width) throw new ArtifactError('BAD_ARTIFACT', `attention map of ${token} has ${map.length} values, expected ${height}x${width}`);
  const m = resizeMask(mask, width, height).data;
  let total = 0,
    inside = 0,
    max = 0,
    maskArea = 0;
  for (let i = 0; i < map.length; i++) {
    const v = Math.max(0, map[i]!);
    total += v;
    if (m[i]) {
      inside += v;
      maskArea++;
    }
    if (v > max) max = v;
  }
  let inter = 0,
    uni = 0;
  for (let i = 0; i < map.length; i++) {
    const on = max > 0 && map[i]! >= 0.5 * max;
    if (on && m[i]) inter++;
    if (on || m[i]) uni++;
  }
  return { token, massInMask: total > 0 ? inside / total : 0, iou: uni > 0 ? inter / uni : 0, maskShare: maskArea / map.length };
}

/** Collects metrics of a run and writes them to `<dir>/metrics.json`. */
export class MetricsRecorder {
  private data: MetricsFile;

  /** `initial`: metrics of an earlier, interrupted run (see `open`). */
  constructor(
    readonly file: string,
    initial?: MetricsFile,
  ) {
    this.data = initial ?? { version: 1, steps: [], timings: {}, attention: {} };
  }

  /** A recorder for `dir`, continuing its metrics.json when one exists (a resumed run). */
  static open(dir: string): MetricsRecorder {
    const file = artifactPath(dir, 'metrics');
    return new MetricsRecorder(file, existsSync(file) ? readMetrics(dir) : undefined);
  }

  /**
   * Appends a step. A step at or before the last recorded one (a run resumed from an earlier
   * checkpoint) first drops the rows from that step on, so the file never holds a step twice.
   */
  recordStep(row: StepMetrics): void {
    const key = (r: StepMetrics) => r.phase * 1e9 + r.step;
    const k = key(row);
    const steps = this.data.steps;
    while (steps.length && key(steps[steps.length - 1]!) >= k) steps.pop();
    steps.push({ ...row });
  }

  /** Adds `ms` to the time of `stage`. */
  addTiming(stage: string, ms: number): void {
    this.data.timings[stage] = (this.data.timings[stage] ?? 0) + ms;
  }

  /** Runs `fn` and adds its wall time to `stage`, also when it throws. */
  async time<T>(stage: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.addTiming(stage, performance.now() - t0);
    }
  }

  setAttention(when: 'before' | 'after', rows: AttentionVsMask[]): void {
    this.data.attention[when] = rows.map((r) => ({ ...r }));
  }

  setEvaluation(summary: EvaluationSummary): void {
    this.data.evaluation = summary;
  }

  get steps(): readonly StepMetrics[] {
    return this.data.steps;
  }

  /** A deep copy of everything recorded (non-finite numbers become null in the file, as JSON has no NaN). */
  toJSON(): MetricsFile {
    return JSON.parse(JSON.stringify(this.data)) as MetricsFile;
  }

  /** Writes metrics.json atomically. */
  flush(): void {
    writeJsonAtomic(this.file, this.data);
  }
}

/** Mean of each loss term over some steps. */
export type LossMeans = Record<(typeof LOSS_TERMS)[number], number>;

/** What a client sees of metrics.json without downloading it (the service puts it on the personalization). */
export interface MetricsSummary {
  steps: { phase1: number; phase2: number };
  /** Per phase, each loss term's mean over its first and its last `SUMMARY_WINDOW` steps. */
  loss: { phase1?: { first: LossMeans; last: LossMeans }; phase2?: { first: LossMeans; last: LossMeans } };
  attention: MetricsFile['attention'];
  evaluation?: EvaluationSummary;
  timingsMs: Record<string, number>;
}

export const SUMMARY_WINDOW = 10;

/** A compact summary of a metrics file (non-finite numbers become null, as in the file). */
export function summarizeMetrics(m: MetricsFile): MetricsSummary {
  // a term that is not a number in some step (NaN, or null as toJSON() writes it) has no mean
  const value = (v: unknown) => (typeof v === 'number' ? v : Number.NaN);
  const means = (rows: StepMetrics[]): LossMeans =>
    Object.fromEntries(LOSS_TERMS.map((t) => [t, rows.reduce((a, r) => a + value(r[t]), 0) / rows.length])) as LossMeans;
  const loss: MetricsSummary['loss'] = {};
  const steps = { phase1: 0, phase2: 0 };
  for (const phase of [1, 2] as const) {
    const rows = m.steps.filter((r) => r.phase === phase);
    steps[`phase${phase}`] = rows.length;
    if (rows.length) loss[`phase${phase}`] = { first: means(rows.slice(0, SUMMARY_WINDOW)), last: means(rows.slice(-SUMMARY_WINDOW)) };
  }
  const timingsMs = Object.fromEntries(Object.entries(m.timings).map(([k, v]) => [k, Math.round(v)]));
  const summary: MetricsSummary = { steps, loss, attention: m.attention, ...(m.evaluation ? { evaluation: m.evaluation } : {}), timingsMs };
  return JSON.parse(JSON.stringify(summary)) as MetricsSummary;
}

/** Reads `<dir>/metrics.json` (null numbers, written for NaN/Infinity, come back as NaN). */
export function readMetrics(dir: string): MetricsFile {
  const file = artifactPath(dir, 'metrics');
  const m = readJsonObject(file, 'metrics');
  if (!Array.isArray(m['steps']) || typeof m['timings'] !== 'object' || m['timings'] === null) {
    throw new ArtifactError('BAD_ARTIFACT', `metrics ${file} must have "steps" (array) and "timings" (object)`);
  }
  const steps = (m['steps'] as Record<string, unknown>[]).map((r) => {
    const out: Record<string, unknown> = { ...r };
    for (const [k, v] of Object.entries(r)) if (v === null) out[k] = Number.NaN;
    return out as unknown as StepMetrics;
  });
  return {
    version: 1,
    steps,
    timings: m['timings'] as Record<string, number>,
    attention: (m['attention'] as MetricsFile['attention'] | undefined) ?? {},
    ...(m['evaluation'] ? { evaluation: m['evaluation'] as EvaluationSummary } : {}),
  };
}
