/**
 * `dynasyn evaluate --protocol FILE --out DIR`: the paper's comparison on a backbone (methods x reference scenes x
 * seeds, per prompt category), resumable: each run is a personalize output directory and finished runs are in
 * the ledger, so rerunning the same command continues where a killed one stopped. One line per run on stderr
 * (with the stages' progress beneath it), the tables' paths on stdout.
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadProtocol, runEvaluation, type EvaluationProgress, type EvaluationResults, type Protocol } from '@dynasyn/dynasyn';
import { CliError } from './errors.js';
import { integer } from './parse.js';
import { createStageProgress } from '../stage-progress.js';

interface EvaluateArgs {
  protocol: string;
  out: string;
  methods?: string[];
  seeds?: number[];
  device?: 'cpu' | 'cuda';
  threads?: number;
}

const list = (value: string): string[] => {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
};
const seedList = (value: string): number[] => list(value).map((s) => integer(0, 40000)(s));

async function runEvaluate(a: EvaluateArgs): Promise<void> {
  await evaluateWithProgress(loadProtocol(a.protocol), a);
  const out = path.resolve(a.out);
  process.stdout.write(`${path.join(out, 'results.md')}\n${path.join(out, 'results.json')}\n${path.join(out, 'report.html')}\n`);
}

/** Runs `protocol` into `a.out` with a line per run and the stages' bars on stderr; Ctrl-C stops at the next step. */
export async function evaluateWithProgress(protocol: Protocol, a: Omit<EvaluateArgs, 'protocol'>): Promise<EvaluationResults> {
  const stages = createStageProgress();
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping at the next step (Ctrl-C again to quit now)\n');
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  const t0 = performance.now();
  const onProgress = (e: EvaluationProgress) => {
    if (e.kind === 'stage') return stages(e.event);
    stages.stop();
    if (e.kind === 'run') process.stderr.write(`[${e.index + 1}/${e.total}] ${e.runId}${e.skipped ? ' (in the ledger)' : ''}\n`);
    else process.stderr.write(`  ${e.runId} scored (${e.seconds.toFixed(0)} s)\n`);
  };
  try {
    const r = await runEvaluation({
      protocol,
      out: a.out,
      ...(a.methods ? { methods: a.methods } : {}),
      ...(a.seeds ? { seeds: a.seeds } : {}),
      ...(a.device ? { device: a.device } : {}),
      ...(a.threads !== undefined ? { threads: a.threads } : {}),
      onProgress,
      signal: controller.signal,
    });
    stages.stop();
    process.stderr.write(`${r.runs.length} runs in ${((performance.now() - t0) / 60_000).toFixed(1)} min (run time ${(r.runSeconds / 60).toFixed(1)} min)\n`);
    return r;
  } catch (e) {
    if (controller.signal.aborted)
      throw new CliError(`interrupted; rerun the same command to continue (finished runs are in ${path.resolve(a.out, 'ledger.jsonl')})`);
    throw e;
  } finally {
    stages.stop();
    process.off('SIGINT', onSigint);
  }
}

export function registerEvaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description(
      "run an evaluation protocol (methods x scenes x seeds; CLIP-T / CLIP-I and the judge per prompt category): the paper's tables as JSON, Markdown and HTML",
    )
    .requiredOption('--protocol <file>', 'protocol JSON (docs/evaluation.md)')
    .requiredOption('--out <dir>', 'output directory (rerun with the same one to continue)')
    .option('--methods <a,b>', "only these of the protocol's methods", list)
    .option('--seeds <n,m>', "only these of the protocol's seeds", seedList)
    .addOption(new Option('--device <d>', 'execution provider').choices(['cpu', 'cuda']))
    .option('--threads <n>', 'onnxruntime intra-op threads', integer(1, 1024))
    .action(async (o: EvaluateArgs) => {
      await runEvaluate(o);
    });
}
