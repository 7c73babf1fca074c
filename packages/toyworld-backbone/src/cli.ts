/**
 * `toyworld-train` (root: `npm run toyworld:train -- [options]`): trains the toy-world backbone from a seed,
 * resuming from the work directory's checkpoints when it holds a run (the default).
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { numberOption } from '@dynasyn/domain';
import { CLI_DEFAULTS as D, CLI_FIXED as F } from './cli-defaults.js';
import { toyBundleConfig, type ToyPreset } from './config.js';
import { syntheticShapesSource } from './synthetic-source.js';
import { toyworldSource } from './toyworld-source.js';
import { trainToyBackbone, type Phase } from './train.js';
import { readRecipe, recipeFile, runRecipe } from './recipe.js';

const HELP = `toyworld-train: train the toy-world backbone with @dynasyn/ort-training (resumes by default)

  --out DIR             finished bundle (default models/toyworld)
  --work DIR            checkpoints, logs, graph cache (default .toyworld-train)
  --seed N              seed of weights and data (default ${D.seed})
  --steps N             diffusion steps (text encoder + UNet; default ${D.steps})
  --vae-steps N         VAE steps (default ${D.vaeSteps})
  --batch N             diffusion batch (default ${D.batch})
  --vae-batch N         VAE batch (default ${D.vaeBatch})
  --decoder-steps N     VAE decoder fine-tuning steps on the frozen encoder's latents (default ${D.decoderSteps})
  --decoder-batch N     its batch (default ${D.decoderBatch})
  --only-decoder        run only the decoder phase (beside a run in its diffusion phase, same --work; with
                        --continue-from, its --refine-decoder phase)
  --continue-from DIR   continue a finished bundle's diffusion phase for --steps more steps (its tokenizer, VAE
                        and weights; the data stream goes on where its log ends); needs its own --work
  --refine-vae N        with --continue-from: first train its VAE (encoder and decoder, from its weights) N more
                        steps with --vae-batch/--vae-lr/--subject-weight, then continue the diffusion phase on the
                        new latents (default 0: the VAE is kept)
  --refine-decoder N    with --continue-from: also fine-tune its decoder N more steps on its frozen encoder's
                        latents with --decoder-batch/--subject-weight (the latent space and the UNet are kept; it
                        may run beside the diffusion phase with --only-decoder; default 0)
  --decoder-channels A,B,C  with --refine-decoder: start a fresh decoder of these block_out_channels (seeded)
                        instead of the bundle's (a wider decoder for the same latents; as many levels as the
                        encoder, each a multiple of 8)
  --subject-weight X    reconstruction weight of the subjects' pixels in the VAE and decoder phases (default 1:
                        plain MSE; a 12-pixel subject is 4% of the image, and plain MSE lets its colour wash out)
  --diffusion-subject-weight X  weight of the subjects' latent cells in the diffusion phase's epsilon MSE (default
                        1: plain MSE; the silhouettes are in ~10% of the cells, the background takes the rest)
  --lr X / --vae-lr X / --decoder-lr X   peak learning rates (default ${D.lr} / ${D.vaeLr} / ${D.decoderLr})
  --minutes M           stop after M minutes of this invocation (checkpointed; run again to continue);
                        a stop inside the diffusion phase still writes the bundle of the weights so far
  --checkpoint-minutes M  checkpoint at least every M minutes (default 4)
  --threads N           intra-op threads (default 2)
  --preset toy|test     model size (test: a tiny model for smoke checks)
  --source toyworld|synthetic   training images (default toyworld)
  --no-resume           start over: delete the work directory first
  --reexport            a finished run writes its bundle again (the model card takes the work directory's NOTES.md)
  --recipe FILE|NAME    run a chain of runs, each continuing the one before (\`--recipe toyworld\`: the package's
                        recipes/toyworld.json, the chain that made models/toyworld), each stage in --work/stage-N, the
                        last one's bundle in --out; a finished stage is not run again; only
                        --work, --out, --threads, --checkpoint-minutes and --minutes go with it (given to each stage)
  --debug               on failure, print every cause whole with its stack (also DYNASYN_DEBUG=1)
  --help`;

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/toyworld' },
    work: { type: 'string', default: '.toyworld-train' },
    seed: { type: 'string', default: String(D.seed) },
    steps: { type: 'string', default: String(D.steps) },
    'vae-steps': { type: 'string', default: String(D.vaeSteps) },
    batch: { type: 'string', default: String(D.batch) },
    'vae-batch': { type: 'string', default: String(D.vaeBatch) },
    'decoder-steps': { type: 'string', default: String(D.decoderSteps) },
    'decoder-batch': { type: 'string', default: String(D.decoderBatch) },
    'decoder-lr': { type: 'string', default: String(D.decoderLr) },
    'only-decoder': { type: 'boolean', default: false },
    'continue-from': { type: 'string' },
    'refine-vae': { type: 'string', default: '0' },
    'refine-decoder': { type: 'string', default: '0' },
    'decoder-channels': { type: 'string' },
    'subject-weight': { type: 'string', default: String(D.subjectWeight) },
    'diffusion-subject-weight': { type: 'string', default: String(D.diffusionSubjectWeight) },
    lr: { type: 'string', default: String(D.lr) },
    'vae-lr': { type: 'string', default: String(D.vaeLr) },
    minutes: { type: 'string' },
    'checkpoint-minutes': { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    preset: { type: 'string', default: D.preset },
    source: { type: 'string', default: D.source },
    resume: { type: 'boolean', default: true },
    'no-resume': { type: 'boolean', default: false },
    recipe: { type: 'string' },
    reexport: { type: 'boolean', default: false },
    debug: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
/** A count (steps, a seed): an integer of at least `min`. */
const int = (name: string, v: string | undefined, min = 0): number => numberOption(name, v, { integer: true, min });
/** A rate, weight or duration: a number above 0. */
const num = (name: string, v: string | undefined): number => numberOption(name, v, { min: 0, aboveMin: true });
if (a.recipe !== undefined) {
  // a chain of runs: the stages' flags come from the recipe, the runner's from here
  const allowed = new Set(['--recipe', '--work', '--out', '--threads', '--checkpoint-minutes', '--minutes', '--debug']);
  const other = process.argv.slice(2).filter((t) => t.startsWith('--') && !allowed.has(t.split('=')[0]!));
  if (other.length) throw new Error(`--recipe takes each stage's flags from the recipe; not ${other.join(', ')}`);
  const common = [
    ...['--threads', String(int('threads', a.threads, 1)), '--checkpoint-minutes', String(num('checkpoint-minutes', a['checkpoint-minutes']))],
    ...(a.debug ? ['--debug'] : []),
  ];
  const finished = await runRecipe({
    recipe: readRecipe(resolve(recipeFile(a.recipe))),
    work: resolve(a.work!),
    out: resolve(a.out!),
    common,
    ...(a.minutes !== undefined ? { deadline: Date.now() + num('minutes', a.minutes) * 60_000 } : {}),
    cli: fileURLToPath(import.meta.url),
    onMessage: (line) => console.log(`recipe: ${line}`),
  });
  console.log(finished ? `done: ${resolve(a.out!)}` : 'stopped; run the same command again to continue');
  process.exit(0);
}
const preset = a.preset as ToyPreset;
if (preset !== 'toy' && preset !== 'test') throw new Error(`--preset must be toy or test, got ${a.preset}`);
const size = preset === 'test' ? 16 : 64;
const source = a.source === 'synthetic' ? syntheticShapesSource(size) : a.source === 'toyworld' ? toyworldSource(size) : undefined;
if (!source) throw new Error(`--source must be toyworld or synthetic, got ${a.source}`);
if (!a['continue-from'] && a['refine-vae'] !== '0') throw new Error("--refine-vae refines a finished bundle's VAE: it needs --continue-from");
if (!a['continue-from'] && a['refine-decoder'] !== '0')
  throw new Error("--refine-decoder fine-tunes a finished bundle's decoder: it needs --continue-from (a run from scratch has --decoder-steps)");
let decoderChannels: number[] | undefined;
if (a['decoder-channels'] !== undefined) {
  if (a['refine-decoder'] === '0') throw new Error('--decoder-channels sets the widths of the decoder --refine-decoder trains: give --refine-decoder N');
  decoderChannels = a['decoder-channels'].split(',').map(Number);
  const levels = toyBundleConfig(1, preset).vae;
  if (decoderChannels.length !== levels.blockOutChannels.length || decoderChannels.some((c) => !Number.isInteger(c) || c <= 0 || c % levels.normGroups !== 0))
    throw new Error(
      `--decoder-channels must be ${levels.blockOutChannels.length} comma-separated multiples of ${levels.normGroups} (the ${preset} encoder's levels and norm groups; it has ${levels.blockOutChannels.join(',')}), got ${a['decoder-channels']}`,
    );
}
const workDir = resolve(a.work!);
if (a['no-resume']) rmSync(workDir, { recursive: true, force: true });

// under nohup (no TTY) the bar prints a line every 30 s into the log instead of redrawing
const barOptions: cliProgress.Options = {
  format: '{phase} |{bar}| {value}/{total} steps | loss {loss} | lr {lr} | {ms} ms/step | ETA {eta_formatted}',
  hideCursor: true,
  etaBuffer: 50,
  fps: 2,
  noTTYOutput: true,
  notTTYSchedule: 30_000,
};
let bar: cliProgress.SingleBar | undefined;
const result = await trainToyBackbone({
  out: resolve(a.out!),
  workDir,
  seed: int('seed', a.seed),
  preset,
  source,
  vae: {
    steps: int('vae-steps', a['vae-steps']),
    batch: int('vae-batch', a['vae-batch'], 1),
    lr: num('vae-lr', a['vae-lr']),
    warmup: F.vaeWarmup,
    klWeight: F.klWeight,
    subjectWeight: num('subject-weight', a['subject-weight']),
  },
  decoder: {
    steps: int('decoder-steps', a['decoder-steps']),
    batch: int('decoder-batch', a['decoder-batch'], 1),
    lr: num('decoder-lr', a['decoder-lr']),
    warmup: F.decoderWarmup,
  },
  onlyDecoder: a['only-decoder'],
  ...(a['continue-from']
    ? {
        continueFrom: resolve(a['continue-from']),
        refineVae: int('refine-vae', a['refine-vae']),
        refineDecoder: int('refine-decoder', a['refine-decoder']),
        ...(decoderChannels ? { decoderChannels } : {}),
      }
    : {}),
  reexport: a.reexport,
  diffusion: {
    steps: int('steps', a.steps),
    batch: int('batch', a.batch, 1),
    lr: num('lr', a.lr),
    warmup: F.diffusionWarmup,
    emptyCaption: F.emptyCaption,
    subjectWeight: num('diffusion-subject-weight', a['diffusion-subject-weight']),
  },
  tokenizerCaptions: F.tokenizerCaptions,
  threads: int('threads', a.threads, 1),
  checkpointMinutes: num('checkpoint-minutes', a['checkpoint-minutes']),
  ...(a.minutes !== undefined ? { stopAfterMinutes: num('minutes', a.minutes), exportOnStop: true } : {}),
  onPhase: (phase: Phase, start, total) => {
    bar?.stop();
    bar = new cliProgress.SingleBar(barOptions, cliProgress.Presets.shades_classic);
    bar.start(total, start, { phase: phase.padEnd(9), loss: '-', lr: '-', ms: '-' });
  },
  onStep: (phase, step, _total, log, ms) => {
    bar?.update(step, { phase: phase.padEnd(9), loss: log.loss.toFixed(4), lr: log.lr.toExponential(2), ms: ms.toFixed(0) });
  },
  onMessage: (line) => console.log(line),
});
bar?.stop();
if (a['only-decoder']) console.log(result.finished ? 'decoder phase done' : 'decoder phase stopped; run the same command again to continue');
else console.log(result.finished ? `done: ${resolve(a.out!)}` : `stopped at phase ${result.state.phase}; run the same command again to continue`);
