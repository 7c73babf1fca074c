/**
 * What every stage function works on (DESIGN.md "Data flow"): one run directory in the output/ layout, the
 * backbone and the validated input. personalize() runs the stages in order on its `outDir`; the service's stage
 * handlers run one each on a run directory synced with storage. A stage reads only what the stages before it
 * wrote into the directory, so both drivers give the same outputs.
 */
import { join } from 'node:path';
import type { ModelBundle, RuntimeOptions } from '@dynasyn/diffusion';
import type { DynasynOptions, PersonalizationInput, ProgressListener } from '../types.js';

export interface StageRun {
  /** The run directory (output/ layout): a stage reads what earlier stages wrote there and adds its own outputs. */
  dir: string;
  /** The backbone (DESIGN.md "Model bundle"). */
  bundle: ModelBundle;
  /** The validated input, fitted to the backbone's size (inputs.ts loadInput / readInputFiles). */
  input: PersonalizationInput;
  /** Resolved options (presets.ts resolveOptions), with this machine's execution providers and threads. */
  options: DynasynOptions;
  /** Rewritten models of this run (attention capture, merged adapters); default `<dir>/cache`. */
  cacheDir?: string;
  onProgress?: ProgressListener;
  /** Stops the stage within one image or training step (training writes a checkpoint there). */
  signal?: AbortSignal;
}

/** onnxruntime settings of a run's sessions. */
export const runtimeOf = (o: Pick<DynasynOptions, 'executionProviders' | 'intraOpNumThreads'>): RuntimeOptions => ({
  executionProviders: o.executionProviders,
  ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
});

export const cacheDirOf = (run: Pick<StageRun, 'dir' | 'cacheDir'>): string => run.cacheDir ?? join(run.dir, 'cache');

export const emitterOf = (run: Pick<StageRun, 'onProgress'>): ProgressListener => run.onProgress ?? (() => {});
