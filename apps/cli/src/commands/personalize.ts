/**
 * `dynasyn personalize | augment | report | demo`: the DynASyn job and its parts on a local directory,
 * in this process. Progress goes to stderr (bars on a terminal), the result's path to stdout. Ctrl-C stops
 * training at a step boundary with a checkpoint; rerunning the same command resumes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import {
  augmentToDir,
  MAX_PLACEHOLDER_VECTORS,
  parsePromptFile,
  personalize,
  PRESET_NAMES,
  renderReport,
  resolveOptions,
  type OptionOverrides,
  type PresetName,
} from '@dynasyn/dynasyn';
import { CliError } from './errors.js';
import { float, integer } from './parse.js';
import { createStageProgress } from '../stage-progress.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface InputArgs {
  backbone: string;
  image: string;
  mask: string[];
  class: string[];
  phrase: string[];
  preset: PresetName;
  seed?: number;
  threads?: number;
  augmentations?: number;
}

interface PersonalizeArgs extends InputArgs {
  out: string;
  prompts?: string;
  augmented?: string;
  clip?: string;
  judge?: string;
  phase1Steps?: number;
  phase2Steps?: number;
  phase1Lr?: number;
  phase2Lr?: number;
  placeholderVectors?: number;
  rowsPerPass?: number;
}

/** Options shared by personalize and augment: the backbone, the input, the preset and seed. */
function inputOptions(c: Command): Command {
  return c
    .requiredOption('--backbone <dir>', 'model bundle directory')
    .requiredOption('--image <img>', 'reference image (PNG/JPEG/WebP)')
    .option('--mask <img>', 'mask of a subject (white = subject, or an alpha cut-out); repeat per subject', collect, [])
    .option('--class <word>', 'class word of the subject of the mask at the same position (ball, panda); repeat', collect, [])
    .option('--phrase <text>', 'noun phrase of the subject at the same position (red ball); optional, repeat', collect, [])
    .addOption(new Option('--preset <name>', 'option preset').choices(PRESET_NAMES as string[]).default('fast'))
    .option('--seed <n>', 'seed of every random choice (default 0)', integer(0, 2 ** 32 - 1))
    .option('--augmentations <n>', 'augmented images (0: no L_AUG)', integer(0, 1000))
    .option('--threads <n>', 'onnxruntime intra-op threads', integer(1, 1024));
}

function checkInput(a: InputArgs): void {
  if (!a.mask.length) throw new CliError('give at least one --mask with its --class');
  if (a.mask.length !== a.class.length)
    throw new CliError(`${a.mask.length} --mask but ${a.class.length} --class: give one class word per mask, in the same order`);
  if (a.phrase.length && a.phrase.length !== a.mask.length)
    throw new CliError(`${a.phrase.length} --phrase for ${a.mask.length} masks: give one per mask or none`);
}

/** A phase's overrides: its steps and learning rate where given (the preset's otherwise). */
function phase<P extends 'phase1' | 'phase2'>(name: P, steps: number | undefined, lr: number | undefined): { [K in P]?: { steps?: number; lr?: number } } {
  if (steps === undefined && lr === undefined) return {};
  return { [name]: { ...(steps !== undefined ? { steps } : {}), ...(lr !== undefined ? { lr } : {}) } } as { [K in P]?: { steps?: number; lr?: number } };
}

function overrides(a: PersonalizeArgs | InputArgs): OptionOverrides {
  const p = a as PersonalizeArgs;
  const train = {
    ...phase('phase1', p.phase1Steps, p.phase1Lr),
    ...phase('phase2', p.phase2Steps, p.phase2Lr),
    ...(p.placeholderVectors !== undefined ? { placeholderVectors: p.placeholderVectors } : {}),
  };
  return {
    ...(p.rowsPerPass !== undefined ? { rowsPerPass: p.rowsPerPass as 1 | 2 } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}),
    ...(a.threads !== undefined ? { intraOpNumThreads: a.threads } : {}),
    ...(a.augmentations !== undefined ? { augmentation: { count: a.augmentations } } : {}),
    ...(Object.keys(train).length ? { train } : {}),
  };
}

const inputFiles = (a: InputArgs) => ({ image: a.image, masks: a.mask, classWords: a.class, ...(a.phrase.length ? { nounPhrases: a.phrase } : {}) });

/** Aborts on the first Ctrl-C (training checkpoints and stops); a second one exits at once. */
function interruptible(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping at the next step (Ctrl-C again to quit now)\n');
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

async function runPersonalize(a: PersonalizeArgs): Promise<void> {
  checkInput(a);
  if (a.judge && !a.clip) throw new CliError("--judge needs --clip: the judge's scores extend the CLIP evaluation (models/toyworld-clip for the toy world)");
  const options = resolveOptions(a.preset, overrides(a));
  let prompts;
  if (a.prompts) {
    const text = await readFile(a.prompts, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read prompts ${a.prompts}: ${e.code ?? e.message}`);
    });
    prompts = parsePromptFile(text, a.mask.length);
  }
  const progress = createStageProgress();
  const stop = interruptible();
  try {
    const r = await personalize({
      backbone: a.backbone,
      input: inputFiles(a),
      options,
      outDir: a.out,
      onProgress: progress,
      signal: stop.signal,
      ...(prompts ? { prompts } : {}),
      ...(a.augmented ? { augmentedDir: a.augmented } : {}),
      ...(a.clip ? { clipModelDir: a.clip } : {}),
      ...(a.judge ? { judgeModelDir: a.judge } : {}),
    });
    progress.stop();
    if (r.resumedFrom) process.stderr.write(`resumed training at phase ${r.resumedFrom.phase}, step ${r.resumedFrom.step}\n`);
    if (r.manifest.backbone.randomWeights)
      process.stderr.write('note: the backbone has random weights, so its images are noise by nature; the losses and attention maps are the signal\n');
    process.stdout.write(`${r.reportPath}\n`);
  } catch (e) {
    if (stop.signal.aborted) throw new CliError(`interrupted; rerun the same command to resume from the last checkpoint in ${path.resolve(a.out)}`);
    throw e;
  } finally {
    progress.stop();
    stop.dispose();
  }
}

async function runAugment(a: InputArgs & { out: string }): Promise<void> {
  checkInput(a);
  const options = resolveOptions(a.preset, overrides(a));
  const progress = createStageProgress();
  try {
    const r = await augmentToDir({ backbone: a.backbone, input: inputFiles(a), options, outDir: a.out, onProgress: progress });
    progress.stop();
    process.stdout.write(`${r.manifestFile} (${r.examples.length} augmented images)\n`);
  } finally {
    progress.stop();
  }
}

export function registerPersonalizationCommands(program: Command): void {
  inputOptions(
    program
      .command('personalize')
      .description('learn placeholder tokens <asset0>.. (and adapters) for the masked subjects of one image, then sample and write report.html'),
  )
    .requiredOption('--out <dir>', 'output directory (rerun with the same one to resume)')
    .option('--prompts <file>', 'sample prompts, one per line with <assetN> (optional "plain:", "action:", "interaction:" prefix)')
    .option('--augmented <dir>', 'use an augmented set made by `dynasyn augment` instead of augmenting')
    .option('--clip <dir>', 'CLIP ONNX folder: CLIP-T / CLIP-I of the samples')
    .option('--judge <dir>', 'toy-world judge folder (models/toyworld-judge; needs --clip): identity acc., attributes kept, prompt acc. of the samples')
    .option('--phase1-steps <n>', 'phase 1 steps (override the preset)', integer(0, 1e6))
    .option('--phase2-steps <n>', 'phase 2 steps (override the preset)', integer(0, 1e6))
    .option('--phase1-lr <x>', "phase 1 learning rate (the placeholder rows'; override the preset)", float(0, 1, { aboveMin: true }))
    .option(
      '--phase2-lr <x>',
      "phase 2 learning rate (adapters and rows; override the preset): lower keeps more of the words' identity, higher moves attention onto the masks further (docs/evaluation.md)",
      float(0, 1, { aboveMin: true }),
    )
    .option(
      '--placeholder-vectors <n>',
      "embedding rows per placeholder (default 1, as the paper); several start from the subject's --phrase and hold more than one word can",
      integer(1, MAX_PLACEHOLDER_VECTORS),
    )
    .option('--rows-per-pass <n>', 'training rows per forward/backward pass: 2, or 1 for half the memory (default: 1 from 768 px up)', integer(1, 2))
    .action(async (o: PersonalizeArgs) => {
      await runPersonalize(o);
    });

  inputOptions(program.command('augment').description('prompt-and-image augmentation and Guided SDE Augmentation alone: writes the augmented set to --out'))
    .requiredOption('--out <dir>', 'output directory of the augmented set')
    .action(async (o: InputArgs & { out: string }) => {
      await runAugment(o);
    });

  program
    .command('report')
    .description('render report.html of a personalization output directory (also of a partial run)')
    .argument('<dir>', 'output directory of `dynasyn personalize`')
    .option('--out <file>', 'HTML file (default DIR/report.html)')
    .action(async (dir: string, o: { out?: string }) => {
      const file = await renderReport(dir, o.out ? { out: o.out } : {});
      process.stdout.write(`${path.resolve(file)}\n`);
    });
}
