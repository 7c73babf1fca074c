#!/usr/bin/env node
/**
 * The `dynasyn` command: flags only (the service commands serve/db/tenants read the environment of issue 5's
 * contract), logic in packages. A failure exits 1 after its message and every cause (`caused by:` lines);
 * `--debug` (anywhere) or DYNASYN_DEBUG=1 adds whole messages and stacks.
 */
import { Command } from 'commander';
import { SCHEDULER_KINDS } from '@dynasyn/diffusion';
import { sample } from './commands/sample.js';
import { createSd21, createTiny } from './commands/bundle.js';
import { registerPersonalizationCommands } from './commands/personalize.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEvaluateCommand } from './commands/evaluate.js';
import { registerDbCommands } from './commands/db.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTenantCommands } from './commands/tenants.js';
import { registerWorkerCommand } from './commands/worker.js';
import { CliError, debugFromEnv, formatFailure } from './commands/errors.js';
import { float, integer, oneOf } from './commands/parse.js';

const program = new Command('dynasyn')
  .description('DynASyn: personalize subjects from one image on Stable-Diffusion-class ONNX bundles')
  .showHelpAfterError(false)
  .configureHelp({ showGlobalOptions: true })
  // A program option: commander takes it before or after the subcommand's name and arguments.
  .option('--debug', 'on failure, print every cause whole with its stack (also DYNASYN_DEBUG=1)');

program
  .command('sample')
  .description('render one image from a model bundle (text-to-image, or image-to-image with --image)')
  .requiredOption('--backbone <dir>', 'model bundle directory')
  .requiredOption('--prompt <text>', 'prompt')
  .option('--negative <text>', 'negative prompt', '')
  .option('--steps <n>', 'denoising steps', integer(1, 1000), 50)
  .option('--guidance <g>', 'classifier-free guidance scale (<= 1: off)', float(0, 100), 7.5)
  .option('--seed <s>', 'seed (same seed, same image); default random', integer(0))
  .option('--scheduler <name>', `scheduler: ${SCHEDULER_KINDS.join('|')}`, oneOf(SCHEDULER_KINDS), 'ddim')
  .option('--out <file.png>', 'output PNG', 'sample.png')
  .option('--image <img>', 'start image (PNG/JPEG/WebP) for image-to-image')
  .option('--strength <s>', 'image-to-image strength in [0, 1]', float(0, 1))
  .option('--threads <n>', 'onnxruntime intra-op threads', integer(1, 1024))
  .action(async (o) => {
    await sample(o);
  });

const bundle = program.command('bundle').description('model bundles');
bundle
  .command('create-tiny')
  .description('write a tiny random-weight bundle (for tests and the demo)')
  .argument('<dir>', 'output directory')
  .option('--seed <n>', 'weight seed', integer(0), 0)
  .action(async (dir: string, o: { seed: number }) => {
    await createTiny(dir, o.seed);
  });
bundle
  .command('create-sd21')
  .description('write a Stable Diffusion 2.1-shaped bundle at full size with random weights (for memory and speed benchmarks; 5.2 GB fp32)')
  .requiredOption('--out <dir>', 'output directory')
  .option('--variant <v>', 'sd21-base (512 px, epsilon) | sd21 (768 px, v-prediction)', oneOf(['sd21-base', 'sd21'] as const), 'sd21-base')
  .option('--dtype <t>', 'fp32 | fp16 (weights, inputs and outputs in float16, as optimum --fp16)', oneOf(['fp32', 'fp16'] as const), 'fp32')
  .option('--seed <n>', 'weight seed', integer(0, 0xffffffff), 0)
  .action(async (o) => {
    await createSd21(o);
  });

registerPersonalizationCommands(program);
registerEvaluateCommand(program);
registerDemoCommand(program);
registerServeCommand(program);
registerDbCommands(program);
registerTenantCommands(program);
registerWorkerCommand(program);

// V8 keeps 10 frames, too few to reach from deep package code up to the command's action.
if (process.argv.includes('--debug') || debugFromEnv(process.env)) Error.stackTraceLimit = 100;

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const debug = program.opts<{ debug?: boolean }>().debug === true || debugFromEnv(process.env);
  // A bad flag the CLI caught itself says all in its message: no hint to stacks there.
  process.stderr.write(formatFailure(e, { prefix: 'dynasyn', debug, hint: !(e instanceof CliError && e.cause === undefined) }));
  process.exitCode = 1;
}
