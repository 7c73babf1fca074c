/**
 * What `toyworld-train` (`npm run toyworld:train`) trains when given no option, and the settings it fixes (no flag
 * sets them). The CLI takes its defaults from here, and the model card its reproducing command line.
 */
import type { TrainOptions } from './train.js';

/** The flags' defaults. */
export const CLI_DEFAULTS = {
  seed: 0,
  steps: 3200,
  vaeSteps: 500,
  batch: 16,
  vaeBatch: 12,
  decoderSteps: 1000,
  decoderBatch: 12,
  decoderLr: 5e-4,
  lr: 1e-3,
  vaeLr: 1e-3,
  subjectWeight: 1,
  diffusionSubjectWeight: 1,
  preset: 'toy',
  source: 'toyworld',
} as const;

/** Settings the CLI fixes: a run with others was made through the API, and no command line reproduces it. */
export const CLI_FIXED = {
  vaeWarmup: 50,
  klWeight: 1e-4,
  decoderWarmup: 50,
  diffusionWarmup: 100,
  emptyCaption: 0.1,
  tokenizerCaptions: 20000,
} as const;

/**
 * The `npm run toyworld:train` flags that reproduce a from-scratch run of `o` (empty: the defaults), or undefined
 * when some setting of `o` has no flag (a run through the API with its own warmups, KL weight, source, ...).
 */
export function reproducingFlags(o: TrainOptions): string[] | undefined {
  const fixed: [number, number][] = [
    [o.vae.warmup, CLI_FIXED.vaeWarmup],
    [o.vae.klWeight, CLI_FIXED.klWeight],
    [o.decoder.warmup, CLI_FIXED.decoderWarmup],
    [o.diffusion.warmup, CLI_FIXED.diffusionWarmup],
    [o.diffusion.emptyCaption, CLI_FIXED.emptyCaption],
    [o.tokenizerCaptions, CLI_FIXED.tokenizerCaptions],
  ];
  if (fixed.some(([a, b]) => a !== b) || !o.source.name) return undefined;
  const d = CLI_DEFAULTS;
  const flags: [string, number | string, number | string][] = [
    ['seed', o.seed, d.seed],
    ['preset', o.preset, d.preset],
    ['source', o.source.name, d.source],
    ['vae-steps', o.vae.steps, d.vaeSteps],
    ['vae-batch', o.vae.batch, d.vaeBatch],
    ['vae-lr', o.vae.lr, d.vaeLr],
    ['subject-weight', o.vae.subjectWeight ?? 1, d.subjectWeight],
    ['decoder-steps', o.decoder.steps, d.decoderSteps],
    ['decoder-batch', o.decoder.batch, d.decoderBatch],
    ['decoder-lr', o.decoder.lr, d.decoderLr],
    ['steps', o.diffusion.steps, d.steps],
    ['batch', o.diffusion.batch, d.batch],
    ['lr', o.diffusion.lr, d.lr],
    ['diffusion-subject-weight', o.diffusion.subjectWeight ?? 1, d.diffusionSubjectWeight],
  ];
  return flags.filter(([, v, def]) => v !== def).map(([name, v]) => `--${name} ${v}`);
}
