/**
 * `dynasyn worker <name>` (hidden): one worker queue in this process, started as a worker app starts it
 * (packages/stages' `startWorkerProcess` over `parseWorkerEnv`, the same schema, settings and logger name
 * `worker-<name>`). `dynasyn serve` forks one per selected queue with its resolved environment and talks to it
 * over the IPC channel: `ready` once the workers take jobs, `failed` with the error when the start fails.
 * Under serve, the process also ends when serve is gone (the channel closes), as the workers did when they lived
 * in serve's own process: the job's lock runs out and the next serve resumes it from its checkpoint.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { integer } from './parse.js';
import { CliError, oneLine } from './errors.js';

/** What a worker child tells `dynasyn serve` over the IPC channel. */
export type WorkerMessage = { type: 'ready' } | { type: 'failed'; message: string };

const tell = (m: WorkerMessage, then?: () => void) => process.send?.(m, undefined, undefined, then);

export async function runWorker(name: string, source: NodeJS.ProcessEnv, o: { nice?: number } = {}): Promise<void> {
  const supervised = typeof process.send === 'function';
  try {
    // before onnxruntime's threads exist: Linux sets a thread's priority, and new threads take their creator's
    if (o.nice) os.setPriority(o.nice);
    const [stages, config, { createLogger }] = await Promise.all([import('@dynasyn/stages'), import('@dynasyn/config'), import('@dynasyn/logger')]);
    if (!(stages.WORKER_NAMES as readonly string[]).includes(name))
      throw new CliError(`unknown worker ${JSON.stringify(name)} (known: ${stages.WORKER_NAMES.join(', ')})`);
    const schema = stages.workerEnvSchema.extend(config.webhookEnv.shape);
    let env;
    try {
      env = config.checkStageLease(config.parseEnvironment(schema, source));
    } catch (e) {
      throw e instanceof config.EnvError ? new CliError(e.message) : e;
    }
    const logger = createLogger({ name: `worker-${name}`, level: env.LOG_LEVEL });
    const webhooks = config.webhookAllowCidrs(env);
    if (webhooks.deprecation) logger.warn({}, webhooks.deprecation);
    const worker = await stages.startWorkerProcess(name as (typeof stages.WORKER_NAMES)[number], env, { logger, webhookAllowCidrs: webhooks.cidrs });
    stages.closeOnSignals(worker, logger, { repeat: supervised ? 'ignore' : 'exit' });
    if (supervised) {
      process.once('disconnect', () => process.exit(1));
      tell({ type: 'ready' });
    }
  } catch (e) {
    // serve reports it as this child's failure; the whole failure is printed below (main.ts) as for any command
    if (supervised) tell({ type: 'failed', message: oneLine(e) }, () => process.disconnect());
    throw e;
  }
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker', { hidden: true })
    .description('run one worker queue in this process, as its worker app does (dynasyn serve starts one per queue)')
    .argument('<name>', 'augment | gsa | train | sample | webhooks')
    .option('--nice <n>', 'CPU priority (0-19) of this process', integer(0, 19))
    .action(async (name: string, o: { nice?: number }) => {
      await runWorker(name, process.env, o);
    });
}
