/**
 * `dynasyn evaluate --protocol FILE --out DIR`: the paper's comparison on a backbone (methods x reference scenes x
 * seeds, per prompt category), resumable: each run is a personalize output directory and finished runs are in
 * the ledger, so rerunning the same command continues where a killed one stopped. One line per run on stderr
 * (with the stages' progress beneath it), the tables' paths on stdout. `--jobs N` runs N shards of the runs in
 * N child processes (`--shard K/N` each) sharing the output directory: small graphs use cores better as
 * several one-thread processes than as one process with several threads.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
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
  /** `K/N` from --shard. */
  shard?: { index: number; count: number };
  jobs?: number;
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
const shardOf = (value: string): { index: number; count: number } => {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(m?.[1]),
    count = Number(m?.[2]);
  if (!m || !(count >= 1 && index < count)) throw new InvalidArgumentError('expected K/N with 0 <= K < N (e.g. 0/2)');
  return { index, count };
};

async function runEvaluate(a: EvaluateArgs): Promise<void> {
  if (a.jobs !== undefined && a.jobs > 1) {
    if (a.shard) throw new CliError('--jobs and --shard exclude each other (--jobs starts its own shards)');
    await runShards(a, a.jobs);
  }
  // after --jobs every run is in the ledger: this pass only writes the complete tables and report.html
  await evaluateWithProgress(loadProtocol(a.protocol), { ...a, listSkipped: !(a.jobs !== undefined && a.jobs > 1) });
  const out = path.resolve(a.out);
  process.stdout.write(`${path.join(out, 'results.md')}\n${path.join(out, 'results.json')}\n${path.join(out, 'report.html')}\n`);
}

/** Runs `protocol` into `a.out` with a line per run and the stages' bars on stderr; Ctrl-C stops at the next step. */
export async function evaluateWithProgress(protocol: Protocol, a: Omit<EvaluateArgs, 'protocol'> & { listSkipped?: boolean }): Promise<EvaluationResults> {
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
    if (e.kind === 'run') {
      if (!e.skipped || a.listSkipped !== false) process.stderr.write(`[${e.index + 1}/${e.total}] ${e.runId}${e.skipped ? ' (in the ledger)' : ''}\n`);
    } else process.stderr.write(`  ${e.runId} scored (${e.seconds.toFixed(0)} s)\n`);
  };
  try {
    const r = await runEvaluation({
      protocol,
      out: a.out,
      ...(a.methods ? { methods: a.methods } : {}),
      ...(a.seeds ? { seeds: a.seeds } : {}),
      ...(a.device ? { device: a.device } : {}),
      ...(a.threads !== undefined ? { threads: a.threads } : {}),
      ...(a.shard ? { shard: a.shard } : {}),
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

/**
 * `--jobs N`: N child processes, each `evaluate --shard K/N` on the same --out with `threads` (default: the cores
 * shared out) intra-op threads. Their run lines come to stderr as `job K: ...`; each one's whole log goes to
 * `<out>/logs/job-K.log`. Ctrl-C is passed on once to every job (each stops at its next step). Waits for all;
 * a failed job fails the command after the others are done, naming its last line and its log.
 */
async function runShards(a: EvaluateArgs, jobs: number): Promise<void> {
  loadProtocol(a.protocol); // a bad protocol fails here, once, not in every job
  const out = path.resolve(a.out);
  const logs = path.join(out, 'logs');
  mkdirSync(logs, { recursive: true });
  const threads = a.threads ?? Math.max(1, Math.floor(os.availableParallelism() / jobs));
  process.stderr.write(`${jobs} jobs, ${threads} thread${threads === 1 ? '' : 's'} each; their logs in ${logs}\n`);
  const script = process.argv[1]!;
  let interrupted = false;
  const started = Array.from({ length: jobs }, (_, k) => {
    const args = [
      'evaluate',
      '--protocol',
      path.resolve(a.protocol),
      '--out',
      out,
      '--shard',
      `${k}/${jobs}`,
      '--threads',
      String(threads),
      ...(a.methods ? ['--methods', a.methods.join(',')] : []),
      ...(a.seeds ? ['--seeds', a.seeds.join(',')] : []),
      ...(a.device ? ['--device', a.device] : []),
    ];
    const logFile = path.join(logs, `job-${k}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    // its own process group: a terminal's Ctrl-C reaches the parent only, which passes it on once
    const child = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let last = '';
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.write(`${line}\n`);
      if (line.trim()) last = line;
      if (/^\[\d+\/\d+\] |^ {2}\S+ scored \(/.test(line)) process.stderr.write(`job ${k}: ${line.trimStart()}\n`);
    });
    const done = new Promise<{ k: number; code: number | null; signal: NodeJS.Signals | null; last: () => string; logFile: string }>((resolveDone) => {
      child.on('error', (e) => {
        last = e.message;
        resolveDone({ k, code: null, signal: null, last: () => last, logFile });
      });
      child.on('close', (code, signal) => {
        // said at once: the other jobs may run for hours before the command ends
        if (code !== 0 && !interrupted) process.stderr.write(`job ${k} failed (${howItEnded(code, signal)}): ${last}\n`);
        log.end(() => resolveDone({ k, code, signal, last: () => last, logFile }));
      });
    });
    return { child, done };
  });
  const onSignal = () => {
    if (interrupted) {
      for (const s of started) s.child.kill('SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write('\nstopping every job at its next step (Ctrl-C again to quit now)\n');
    for (const s of started) s.child.kill('SIGINT');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const results = await Promise.all(started.map((s) => s.done));
    if (interrupted) throw new CliError(`interrupted; rerun the same command to continue (finished runs are in ${path.join(out, 'ledger.jsonl')})`);
    const failed = results.filter((r) => r.code !== 0);
    if (failed.length)
      throw new CliError(
        failed.map((r) => `job ${r.k} failed (${howItEnded(r.code, r.signal)}): ${r.last() || 'no output'}; its log: ${r.logFile}`).join('; '),
      );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const howItEnded = (code: number | null, signal: NodeJS.Signals | null): string => (signal ? `signal ${signal}` : `exit code ${code}`);

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
    .option('--threads <n>', 'onnxruntime intra-op threads (per job with --jobs; default: the cores shared out)', integer(1, 1024))
    .option('--jobs <n>', 'run the runs in n processes at once, sharing --out (e.g. 2 on two cores, one thread each)', integer(1, 64))
    .option('--shard <k/n>', 'only the k-th (0-based) of n shards of the runs: processes or machines sharing one --out', shardOf)
    .action(async (o: EvaluateArgs) => {
      await runEvaluate(o);
    });
}
