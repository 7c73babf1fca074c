/**
 * The tables: per category, per method, per metric, the mean and spread over seeds (docs/evaluation.md
 * "Aggregation"). A seed's value is the mean over scenes of the run's mean over that category's samples
 * (every scene weighs the same); the cell is the mean of the seeds' values and their sample standard
 * deviation (n - 1; null for one seed). Null scores (a metric that does not apply) are left out. The paired
 * tables compare the reference method (the protocol's first) with each other on the same scenes and seeds:
 * every method samples the same prompts at the same seeds, so a difference of run means is far less noisy
 * than the difference of two cells.
 */
import { CATEGORIES, type Category } from './protocol.js';
import type { MetricInfo } from './scorers.js';

/** One scored sample of a run. */
export interface SampleScore {
  /** Path of the image relative to the evaluation's output directory. */
  file: string;
  prompt: string;
  classPrompt: string;
  category: Category;
  seed: number;
  scores: Record<string, number | null>;
}

/** One finished (scene, method, seed) run, as the ledger records it. */
export interface RunRecord {
  runId: string;
  scene: string;
  method: string;
  seed: number;
  /** sha256 of the run's settings: a ledger entry counts only for the same settings. */
  fingerprint: string;
  /**
   * The backbone's folderFingerprint (its files' sizes and sampled bytes, not its path): an entry counts only on
   * the same weights. Absent in ledgers written before it was recorded (they count by their settings alone).
   */
  backbone?: string;
  /** Each versioned scorer's version when the samples were scored (name -> folder fingerprint); absent in older ledgers. */
  scorers?: Record<string, string>;
  /** The run's directory relative to the output directory (a personalize output directory). */
  dir: string;
  samples: SampleScore[];
  seconds: number;
}

export interface Cell {
  mean: number | null;
  /** Sample standard deviation over seeds (n - 1); null with fewer than two seeds. */
  std: number | null;
  /** Seeds with a value. */
  n: number;
  /** The value of each seed, in the protocol's seed order (null: no sample had the metric). */
  perSeed: (number | null)[];
}

export interface TableRow {
  method: string;
  label: string;
  cells: Record<string, Cell>;
}

export interface CategoryTable {
  category: Category;
  /** Samples behind each method's row (all seeds and scenes). */
  samples: Record<string, number>;
  rows: TableRow[];
}

export const mean = (v: readonly number[]): number | null => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

/** Sample standard deviation (n - 1), null below two values. */
export function sampleStd(v: readonly number[]): number | null {
  if (v.length < 2) return null;
  const m = mean(v)!;
  return Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1));
}

const present = (v: readonly (number | null | undefined)[]): number[] => v.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));

/** The value of one (method, seed, category, metric): mean over scenes of each run's mean over its samples. */
export function seedValue(runs: readonly RunRecord[], category: Category, metric: string): number | null {
  const perScene = runs.map((r) => mean(present(r.samples.filter((s) => s.category === category).map((s) => s.scores[metric]))));
  return mean(present(perScene));
}

export function cellOf(perSeed: (number | null)[]): Cell {
  const v = present(perSeed);
  return { mean: mean(v), std: sampleStd(v), n: v.length, perSeed };
}

/** The table of each category that has prompts: a row per method (in `methods` order), a cell per metric. */
export function buildTables(
  runs: readonly RunRecord[],
  methods: readonly { id: string; label: string }[],
  seeds: readonly number[],
  metrics: readonly MetricInfo[],
  categories: readonly Category[] = CATEGORIES,
): CategoryTable[] {
  return categories.map((category) => {
    const samples: Record<string, number> = {};
    const rows = methods.map((m) => {
      const mine = runs.filter((r) => r.method === m.id);
      samples[m.id] = mine.reduce((a, r) => a + r.samples.filter((s) => s.category === category).length, 0);
      const cells: Record<string, Cell> = {};
      for (const k of metrics) {
        cells[k.key] = cellOf(
          seeds.map((seed) =>
            seedValue(
              mine.filter((r) => r.seed === seed),
              category,
              k.key,
            ),
          ),
        );
      }
      return { method: m.id, label: m.label, cells };
    });
    return { category, samples, rows };
  });
}

/** The reference method minus one other, for one metric, over the (scene, seed) runs both have. */
export interface PairedCell {
  /** Mean over seeds of the seed's difference (the mean over scenes of the run-mean differences). */
  mean: number | null;
  /** Sample standard deviation of the seeds' differences (n - 1); null below two seeds. */
  std: number | null;
  /** Seeds with a difference. */
  n: number;
  /** Runs where the reference's run mean was higher, lower, exactly equal. */
  wins: number;
  losses: number;
  ties: number;
}

export interface PairedTable {
  category: Category;
  /** The method every row is compared with. */
  reference: string;
  rows: { method: string; label: string; cells: Record<string, PairedCell> }[];
}

/** `reference` minus each other method, per category and metric, paired by (scene, seed). */
export function buildPairedTables(
  runs: readonly RunRecord[],
  reference: string,
  methods: readonly { id: string; label: string }[],
  seeds: readonly number[],
  metrics: readonly MetricInfo[],
  categories: readonly Category[] = CATEGORIES,
): PairedTable[] {
  const runMean = (r: RunRecord, category: Category, metric: string) =>
    mean(present(r.samples.filter((s) => s.category === category).map((s) => s.scores[metric])));
  const refRuns = new Map(runs.filter((r) => r.method === reference).map((r) => [`${r.scene}/${r.seed}`, r]));
  return categories.map((category) => ({
    category,
    reference,
    rows: methods
      .filter((m) => m.id !== reference)
      .map((m) => {
        const cells: Record<string, PairedCell> = {};
        for (const k of metrics) {
          const diffs: { seed: number; d: number }[] = [];
          for (const r of runs.filter((x) => x.method === m.id)) {
            const ref = refRuns.get(`${r.scene}/${r.seed}`);
            const a = ref ? runMean(ref, category, k.key) : null,
              b = runMean(r, category, k.key);
            if (a !== null && b !== null) diffs.push({ seed: r.seed, d: a - b });
          }
          const perSeed = present(seeds.map((seed) => mean(diffs.filter((x) => x.seed === seed).map((x) => x.d))));
          cells[k.key] = {
            mean: mean(perSeed),
            std: sampleStd(perSeed),
            n: perSeed.length,
            wins: diffs.filter((x) => x.d > 0).length,
            losses: diffs.filter((x) => x.d < 0).length,
            ties: diffs.filter((x) => x.d === 0).length,
          };
        }
        return { method: m.id, label: m.label, cells };
      }),
  }));
}
