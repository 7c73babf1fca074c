/** The model card's reproducing command line: the flags that differ from the CLI's defaults, or none when no flag can say a setting. */
import { CLI_DEFAULTS, CLI_FIXED, reproducingFlags } from './cli-defaults.js';
import { syntheticShapesSource } from './synthetic-source.js';
import { toyworldSource } from './toyworld-source.js';
import type { TrainOptions } from './train.js';

const cliRun = (): TrainOptions => ({
  out: 'models/toyworld',
  workDir: '.toyworld-train',
  seed: CLI_DEFAULTS.seed,
  preset: 'toy',
  source: toyworldSource(64),
  vae: {
    steps: CLI_DEFAULTS.vaeSteps,
    batch: CLI_DEFAULTS.vaeBatch,
    lr: CLI_DEFAULTS.vaeLr,
    warmup: CLI_FIXED.vaeWarmup,
    klWeight: CLI_FIXED.klWeight,
    subjectWeight: 1,
  },
  decoder: { steps: CLI_DEFAULTS.decoderSteps, batch: CLI_DEFAULTS.decoderBatch, lr: CLI_DEFAULTS.decoderLr, warmup: CLI_FIXED.decoderWarmup },
  diffusion: {
    steps: CLI_DEFAULTS.steps,
    batch: CLI_DEFAULTS.batch,
    lr: CLI_DEFAULTS.lr,
    warmup: CLI_FIXED.diffusionWarmup,
    emptyCaption: CLI_FIXED.emptyCaption,
    subjectWeight: 1,
  },
  tokenizerCaptions: CLI_FIXED.tokenizerCaptions,
  threads: 2,
  checkpointMinutes: 4,
});

describe('the command line that reproduces a run', () => {
  it('is the bare command for the defaults, whatever the threads, directories and checkpoints', () => {
    expect(reproducingFlags({ ...cliRun(), threads: 1, out: 'elsewhere', checkpointMinutes: 9 })).toEqual([]);
  });

  it('names each option that differs from its default, and the source and preset by their flag values', () => {
    const o = cliRun();
    const flags = reproducingFlags({
      ...o,
      seed: 3,
      preset: 'test',
      source: syntheticShapesSource(16),
      vae: { ...o.vae, steps: 40, subjectWeight: 8 },
      diffusion: { ...o.diffusion, steps: 9000, lr: 5e-4, subjectWeight: 4 },
    });
    expect(flags).toEqual([
      '--seed 3',
      '--preset test',
      '--source synthetic',
      '--vae-steps 40',
      '--subject-weight 8',
      '--steps 9000',
      '--lr 0.0005',
      '--diffusion-subject-weight 4',
    ]);
  });

  it('is none when a setting has no flag: a warmup, the empty-caption share, a source made in code', () => {
    const o = cliRun();
    expect(reproducingFlags({ ...o, diffusion: { ...o.diffusion, warmup: 1 } })).toBeUndefined();
    expect(reproducingFlags({ ...o, diffusion: { ...o.diffusion, emptyCaption: 0.2 } })).toBeUndefined();
    const { name: _name, ...unnamed } = o.source;
    expect(reproducingFlags({ ...o, source: unnamed })).toBeUndefined();
  });
});
