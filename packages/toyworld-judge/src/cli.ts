/**
 * `toyworld-judge` (root: `npm run toyworld:judge -- [options]`): trains the judge and the toy CLIP from a
 * seed, resuming from the work directory's checkpoints (the default), and writes models/toyworld-judge/ and
 * models/toyworld-clip/ with their model cards.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { numberOption } from '@dynasyn/domain';
import { evaluateJudgeFolder, trainJudge, type JudgeMetrics } from './train-judge.js';
import type { TrainRunOptions } from './train-loop.js';
import { trainClip } from './train-clip.js';

const HELP = `toyworld-judge: train the toy-world judge and CLIP with @dynasyn/ort-training (resumes by default)

  --only judge|clip     train one of them (default both, the judge first)
  --judge-out DIR       default models/toyworld-judge
  --clip-out DIR        default models/toyworld-clip
  --work DIR            checkpoints, logs, graph cache (default .scratch/toyworld-judge)
  --seed N              seed of weights and data (default 0)
  --judge-steps N       default 12000   --judge-batch N  default 32    --judge-lr X  default 3e-3
  --judge-restart-at N  warm restart of the judge's lr schedule at this step (0: none; default 8000)
  --judge-restart-lr X  its peak lr (default 1e-3)
  --clip-steps N        default 600     --clip-batch N   default 48    --clip-lr X   default 2e-3
  --eval N              scenes per evaluation set once trained (default 500; 0 skips)
  --minutes M           stop after M minutes of this invocation (checkpointed; run again to continue)
  --checkpoint-minutes M  checkpoint at least every M minutes (default 3)
  --threads N           intra-op threads (default 2)
  --no-resume           start over: delete the work directory first
  --reevaluate          train nothing: re-measure the judge folder (--judge-out) with the scoring code as it is
                        now (--eval scenes per set) and rewrite its metrics.json and MODEL_CARD.md
  --debug               on failure, print every cause whole with its stack (also DYNASYN_DEBUG=1)
  --help`;

const { values: a } = parseArgs({
  options: {
    only: { type: 'string' },
    'judge-out': { type: 'string', default: 'models/toyworld-judge' },
    'clip-out': { type: 'string', default: 'models/toyworld-clip' },
    work: { type: 'string', default: '.scratch/toyworld-judge' },
    seed: { type: 'string', default: '0' },
    'judge-steps': { type: 'string', default: '12000' },
    'judge-batch': { type: 'string', default: '32' },
    'judge-lr': { type: 'string', default: '3e-3' },
    'judge-restart-at': { type: 'string', default: '8000' },
    'judge-restart-lr': { type: 'string', default: '1e-3' },
    'clip-steps': { type: 'string', default: '600' },
    'clip-batch': { type: 'string', default: '48' },
    'clip-lr': { type: 'string', default: '2e-3' },
    eval: { type: 'string', default: '500' },
    minutes: { type: 'string' },
    'checkpoint-minutes': { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    'no-resume': { type: 'boolean', default: false },
    reevaluate: { type: 'boolean', default: false },
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
/** A rate or duration: a number above 0. */
const num = (name: string, v: string | undefined): number => numberOption(name, v, { min: 0, aboveMin: true });
if (a.only !== undefined && a.only !== 'judge' && a.only !== 'clip') throw new Error(`--only must be judge or clip, got ${a.only}`);
const work = resolve(a.work!);
if (a['no-resume']) rmSync(work, { recursive: true, force: true });
const deadline = a.minutes !== undefined ? Date.now() + num('minutes', a.minutes) * 60_000 : undefined;

// under nohup (no TTY) the bar prints a line every 30 s into the log instead of redrawing
const bar = new cliProgress.SingleBar(
  {
    format: '{what} |{bar}| {value}/{total} {unit} | {info} | ETA {eta_formatted}',
    noTTYOutput: true,
    notTTYSchedule: 30_000,
    etaBuffer: 50,
  },
  cliProgress.Presets.shades_classic,
);
const hooks = (what: string): Pick<TrainRunOptions, 'onStart' | 'onStep' | 'onEval'> => {
  let evalLabel = '';
  return {
    onStart: (total, start) => bar.start(total, start, { what: what.padEnd(5), unit: 'steps', info: start ? `resumed at ${start}` : '' }),
    onStep: (log) =>
      bar.update(log.step + 1, {
        info: `loss ${log.loss.toFixed(4)} ${Object.entries(log.terms)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(' ')} | lr ${log.lr.toExponential(2)} | ${log.ms} ms/step`,
      }),
    onEval: (label, done, total) => {
      if (label !== evalLabel) {
        bar.stop();
        bar.start(total, 0, { what: what.padEnd(5), unit: 'scenes', info: `evaluating ${label}` });
        evalLabel = label;
      }
      bar.update(done);
    },
  };
};

const common = { seed: int('seed', a.seed), work: '', out: '', threads: int('threads', a.threads, 1), evalCount: int('eval', a.eval) };
const cpMinutes = num('checkpoint-minutes', a['checkpoint-minutes']);
let unfinished = false;
if (a.reevaluate) {
  const out = resolve(a['judge-out']!);
  let metrics: JudgeMetrics;
  try {
    metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as JudgeMetrics;
  } catch (cause) {
    throw new Error(`--reevaluate needs a trained judge folder with its metrics.json; could not read ${join(out, 'metrics.json')}`, { cause });
  }
  // folders written before the seed and lr were recorded: this command's (the defaults the committed judge was trained with)
  const seed = metrics.seed ?? int('seed', a.seed);
  const lr = metrics.lr ?? num('judge-lr', a['judge-lr']);
  await evaluateJudgeFolder({ out, threads: common.threads, evalCount: int('eval', a.eval), ...hooks('judge') }, { ...metrics, seed, lr });
  bar.stop();
  console.log(`judge re-measured: ${join(out, 'metrics.json')}, ${join(out, 'MODEL_CARD.md')}`);
  process.exit(0);
}
if (a.only !== 'clip') {
  const out = resolve(a['judge-out']!);
  const r = await trainJudge({
    ...common,
    work: join(work, 'judge'),
    out,
    steps: int('judge-steps', a['judge-steps']),
    batch: int('judge-batch', a['judge-batch'], 1),
    lr: num('judge-lr', a['judge-lr']),
    ...(int('judge-restart-at', a['judge-restart-at']) > 0
      ? { restart: { at: int('judge-restart-at', a['judge-restart-at']), lr: num('judge-restart-lr', a['judge-restart-lr']) } }
      : {}),
    checkpointMinutes: cpMinutes,
    ...(deadline !== undefined ? { deadline } : {}),
    ...hooks('judge'),
  });
  bar.stop();
  if (r.finished) console.log(`judge written to ${out}`);
  else unfinished = true;
}
if (a.only !== 'judge' && !unfinished) {
  const out = resolve(a['clip-out']!);
  const r = await trainClip({
    ...common,
    work: join(work, 'clip'),
    out,
    steps: int('clip-steps', a['clip-steps']),
    batch: int('clip-batch', a['clip-batch'], 1),
    lr: num('clip-lr', a['clip-lr']),
    checkpointMinutes: cpMinutes,
    ...(deadline !== undefined ? { deadline } : {}),
    ...hooks('clip'),
  });
  bar.stop();
  if (r.finished) console.log(`CLIP written to ${out}`);
  else unfinished = true;
}
if (unfinished) console.log(`stopped at the time limit; checkpointed in ${work}: run the same command again to continue`);
