#!/usr/bin/env node
/**
 * `toyworld`: render one scene from a spec, write a data set, or a contact sheet to look at.
 *
 *   toyworld render --spec scene.json --out DIR [--size 64]
 *   toyworld dataset --count N --seed S --out DIR [--size 64] [--held-out exclude|only|include] [--subjects 1|2]
 *   toyworld sheet --out sheet.png [--count 48] [--seed S] [--size 64] [--columns 8] [--held-out ...]
 *
 * A failure prints its message and its causes on stderr and exits 1 (`--debug`: whole, with stacks).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { parseNumber, runCommand } from '@dynasyn/domain';
import cliProgress from 'cli-progress';
import { writeDataset, writeSceneFiles } from './dataset.js';
import { ToyworldError } from './errors.js';
import { encodePng } from './png.js';
import { renderScene } from './render.js';
import { datasetSceneSpec, type SampleOptions } from './sample.js';
import { contactSheet } from './sheet.js';

const int = (lo: number, hi: number) => (value: string) => {
  try {
    return parseNumber(value, { integer: true, min: lo, max: hi });
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const heldOutMode = (value: string) => {
  if (value !== 'exclude' && value !== 'only' && value !== 'include') throw new InvalidArgumentError('expected exclude, only or include');
  return value;
};
const subjectCount = (value: string) => {
  if (value !== '1' && value !== '2') throw new InvalidArgumentError('expected 1 or 2');
  return Number(value) as 1 | 2;
};

function readSpec(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ToyworldError('BAD_ARGUMENT', `cannot read --spec ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ToyworldError('BAD_SPEC', `${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

const program = new Command('toyworld')
  .description('The toy world: render scenes, write data sets')
  .option('--debug', 'on failure, print every cause whole with its stack (also DYNASYN_DEBUG=1)')
  .showHelpAfterError();

program
  .command('render')
  .description('render one scene: image.png, mask-<i>.png, labels.json, captions.txt, spec.json in DIR')
  .requiredOption('--spec <file>', 'scene spec (JSON; format in the package README)')
  .requiredOption('--out <dir>', 'output directory')
  .option('--size <px>', 'image side', int(32, 512), 64)
  .action((o: { spec: string; out: string; size: number }) => {
    const scene = renderScene(readSpec(o.spec), { size: o.size });
    const files = writeSceneFiles(scene, o.out);
    process.stdout.write(`wrote ${files.join(', ')} to ${o.out}\n${scene.captions[0]}\n`);
  });

program
  .command('dataset')
  .description('write a data set: images/, masks/, index.jsonl, dataset.json in DIR')
  .requiredOption('--count <n>', 'number of scenes', int(1, 10_000_000))
  .requiredOption('--seed <s>', 'seed (scene i is datasetSceneSpec(seed, i))')
  .requiredOption('--out <dir>', 'output directory')
  .option('--size <px>', 'image side', int(32, 512), 64)
  .option('--held-out <mode>', 'held-out identities: exclude (default), only, include', heldOutMode, 'exclude')
  .option('--subjects <n>', 'subjects per scene: 1 or 2 (default: either)', subjectCount)
  .action((o: { count: number; seed: string; out: string; size: number; heldOut: SampleOptions['heldOut']; subjects?: 1 | 2 }) => {
    const tty = process.stderr.isTTY;
    const bar = new cliProgress.SingleBar(
      { format: 'toyworld dataset |{bar}| {value}/{total} scenes  {eta_formatted} left', noTTYOutput: false },
      cliProgress.Presets.shades_classic,
    );
    if (tty) bar.start(o.count, 0);
    const step = Math.max(1, Math.floor(o.count / 10));
    const started = Date.now();
    const index = writeDataset({
      count: o.count,
      seed: o.seed,
      out: o.out,
      size: o.size,
      heldOut: o.heldOut,
      ...(o.subjects ? { subjects: o.subjects } : {}),
      onProgress: (done) => {
        if (tty) bar.update(done);
        else if (done % step === 0 || done === o.count) process.stderr.write(`toyworld dataset: ${done}/${o.count} scenes\n`);
      },
    });
    if (tty) bar.stop();
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`wrote ${o.count} scenes to ${o.out} (${index}) in ${seconds.toFixed(1)} s\n`);
  });

program
  .command('sheet')
  .description('a contact sheet PNG of sampled scenes, to look at the world')
  .requiredOption('--out <file>', 'output PNG')
  .option('--count <n>', 'number of scenes', int(1, 1000), 48)
  .option('--seed <s>', 'seed', '0')
  .option('--size <px>', 'image side', int(32, 512), 64)
  .option('--columns <n>', 'scenes per row', int(1, 100), 8)
  .option('--held-out <mode>', 'exclude (default), only, include', heldOutMode, 'exclude')
  .action((o: { out: string; count: number; seed: string; size: number; columns: number; heldOut: SampleOptions['heldOut'] }) => {
    const scenes = Array.from({ length: o.count }, (_, i) => renderScene(datasetSceneSpec(o.seed, i, { heldOut: o.heldOut }), { size: o.size }));
    const sheet = contactSheet(scenes, o.columns);
    writeFileSync(o.out, encodePng(sheet.rgb, sheet.width, sheet.height, 3));
    process.stdout.write(`wrote ${o.out} (${sheet.width}x${sheet.height}, ${o.count} scenes)\n`);
  });

// a failure prints its message and causes (whole, with stacks, on --debug), and exits 1
await runCommand('toyworld', () => program.parseAsync(process.argv));
