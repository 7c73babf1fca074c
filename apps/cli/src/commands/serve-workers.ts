/**
 * The workers `dynasyn serve` runs: one child process per selected queue, each the CLI's hidden
 * `dynasyn worker <name>`, i.e. packages/stages' `startWorkerProcess`, the very function each worker app's index.ts
 * calls, over serve's Postgres, Redis and storage. Stage work (onnxruntime, image and batch building) thus never
 * runs on the API's event loop. Their settings come from the worker apps' own environment schema (DEVICE,
 * THREADS, CONCURRENCY, WORK_DIR, ...) fed with serve's resolved values, so lock, stall and close times, device
 * and threads are the deployment's. WORKERS picks the queues (comma list of augment, gsa, train, sample,
 * webhooks; `none` for an API-only process, e.g. the API benchmark); default all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { webhookAllowCidrs } from '@dynasyn/config';
import type { WorkerName } from '@dynasyn/stages';
import { CliError } from './errors.js';
import type { ServiceEnv } from './service-env.js';
import { superviseChild, type Backoff, type SupervisedChild } from './serve-supervisor.js';

/** The queues serve can run: packages/stages' WORKER_NAMES (the compiler checks that none is missing). */
export const WORKER_NAMES = ['augment', 'gsa', 'train', 'sample', 'webhooks'] as const satisfies readonly WorkerName[];
type Missing = Exclude<WorkerName, (typeof WORKER_NAMES)[number]>;
const everyWorkerListed: [Missing] extends [never] ? true : Missing = true;
void everyWorkerListed;

export interface RunningWorkers {
  names: WorkerName[];
  /** The worker processes, one per queue. */
  children: readonly SupervisedChild[];
  /** SIGTERM to every child (running stages checkpoint and stop), SIGKILL past `graceMs`; then the scratch goes. Resolves false if a child had to be killed. */
  close(graceMs: number): Promise<boolean>;
}

export function selectedWorkers(spec: string | undefined): WorkerName[] {
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') return [...WORKER_NAMES];
  if (spec.trim() === 'none') return [];
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names)
    if (!(WORKER_NAMES as readonly string[]).includes(n))
      throw new CliError(`WORKERS: unknown worker ${JSON.stringify(n)} (known: ${WORKER_NAMES.join(', ')}, none)`);
  return [...new Set(names)] as WorkerName[];
}

/** The worker apps' environment as serve runs them: `source` with serve's resolved values in place. */
export function workerEnvironment(source: NodeJS.ProcessEnv, env: ServiceEnv, backboneDir: string, workDir?: string): NodeJS.ProcessEnv {
  return {
    ...source,
    DATABASE_URL: env.DATABASE_URL,
    REDIS_URL: env.REDIS_URL,
    QUEUE_PREFIX: env.QUEUE_PREFIX,
    STORAGE_URL: env.STORAGE_URL,
    BACKBONE: backboneDir,
    STAGE_LOCK_SECONDS: String(env.STAGE_LOCK_SECONDS),
    // unset stays unset (the lease is then the lock's value, which may be below the bounds of a lease set)
    ...(env.STAGE_LEASE_SECONDS !== undefined ? { STAGE_LEASE_SECONDS: String(env.STAGE_LEASE_SECONDS) } : {}),
    SHUTDOWN_GRACE_SECONDS: String(env.SHUTDOWN_GRACE_SECONDS),
    ...(workDir !== undefined ? { WORK_DIR: workDir } : {}),
    LOG_LEVEL: env.LOG_LEVEL,
    // the allow-list serve resolved (the deprecated WEBHOOK_ALLOW_PRIVATE already folded in and warned about once)
    WEBHOOK_ALLOW_CIDRS: webhookAllowCidrs(env).cidrs.join(','),
    WEBHOOK_ALLOW_PRIVATE: 'false',
  };
}

/** The CLI's entry (dist/main.js), which the children run as `worker <name>`. */
const cliMain = fileURLToPath(new URL('../main.js', import.meta.url));

export interface StartWorkersOptions {
  /** The module a child runs (default the CLI's dist/main.js). */
  entry?: string;
  backoff?: Backoff;
}

/** Starts one worker process per selected queue and resolves when all take jobs; the first child's start failure rejects (the others stopped). */
export async function startWorkers(
  source: NodeJS.ProcessEnv,
  env: ServiceEnv,
  backboneDir: string,
  log: (line: string) => void,
  o: StartWorkersOptions = {},
): Promise<RunningWorkers> {
  const names = selectedWorkers(env.WORKERS);
  if (names.length === 0) return { names, children: [], close: async () => true };
  const { parseWorkerEnv } = await import('@dynasyn/stages');
  // without WORK_DIR, a scratch directory of this serve, shared by its children, removed when it stops
  const scratch = source.WORK_DIR ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-serve-'));
  const removeScratch = () => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  };
  const childEnv = workerEnvironment(source, env, backboneDir, scratch);
  let workerEnv;
  try {
    // checked here once: a bad variable is one line, not one failure per child
    workerEnv = parseWorkerEnv(childEnv);
  } catch (e) {
    removeScratch();
    throw new CliError((e as Error).message);
  }
  const graceMs = env.SHUTDOWN_GRACE_SECONDS * 1000;
  const started = await Promise.allSettled(
    names.map((name) =>
      superviseChild(
        { name: `worker ${name}`, modulePath: o.entry ?? cliMain, args: ['worker', name, '--nice', String(env.WORKER_NICE)], env: childEnv },
        log,
        o.backoff,
      ),
    ),
  );
  const children = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(children.map((c) => c.stop(graceMs)));
    removeScratch();
    throw failed.reason;
  }
  log(
    `workers ${children.map((c) => `${c.name.replace(/^worker /, '')} (pid ${c.pid()})`).join(', ')} on queue prefix ${env.QUEUE_PREFIX} (device ${workerEnv.DEVICE}, concurrency ${workerEnv.CONCURRENCY}${workerEnv.THREADS ? `, ${workerEnv.THREADS} threads` : ''})`,
  );
  return {
    names,
    children,
    close: async (grace) => {
      const ends = await Promise.all(children.map((c) => c.stop(grace)));
      removeScratch();
      return ends.every((e) => e === 'exited');
    },
  };
}
