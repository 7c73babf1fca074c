/**
 * The workers `dynasyn serve` runs in its own process: packages/stages' `startWorkers`, the very function each
 * worker app's index.ts calls, over serve's Postgres, Redis and storage. Its settings come from the worker apps'
 * own environment schema (DEVICE, THREADS, CONCURRENCY, WORK_DIR, ...) fed with serve's resolved values, so lock,
 * stall and close times, device and threads are the deployment's. WORKERS picks the queues (comma list of
 * augment, gsa, train, sample, webhooks; `none` for an API-only process, e.g. the API benchmark); default all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkerName } from '@dynasyn/stages';
import { CliError } from './errors.js';
import type { ServiceEnv } from './service-env.js';

/** The queues serve can run: packages/stages' WORKER_NAMES (the compiler checks that none is missing). */
export const WORKER_NAMES = ['augment', 'gsa', 'train', 'sample', 'webhooks'] as const satisfies readonly WorkerName[];
type Missing = Exclude<WorkerName, (typeof WORKER_NAMES)[number]>;
const everyWorkerListed: [Missing] extends [never] ? true : Missing = true;
void everyWorkerListed;

export interface RunningWorkers {
  names: WorkerName[];
  /** Stops taking jobs; running stages checkpoint and stop; then the clients close. */
  close(): Promise<void>;
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
    SHUTDOWN_GRACE_SECONDS: String(env.SHUTDOWN_GRACE_SECONDS),
    ...(workDir !== undefined ? { WORK_DIR: workDir } : {}),
    // serve hands its own logger in (its LOG_LEVEL also takes trace and fatal)
    LOG_LEVEL: undefined,
  };
}

export async function startWorkers(source: NodeJS.ProcessEnv, env: ServiceEnv, backboneDir: string, log: (line: string) => void): Promise<RunningWorkers> {
  const names = selectedWorkers(env.WORKERS);
  if (names.length === 0) return { names, close: async () => undefined };
  // loaded only when workers run: onnxruntime, Prisma and BullMQ stay out of the other commands
  const [stages, { createLogger }] = await Promise.all([import('@dynasyn/stages'), import('@dynasyn/logger')]);
  // without WORK_DIR, a scratch directory of this process, removed when it stops
  const scratch = source.WORK_DIR ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-serve-'));
  const removeScratch = () => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  };
  let workers: Awaited<ReturnType<typeof stages.startWorkers>>;
  try {
    let workerEnv;
    try {
      workerEnv = stages.parseWorkerEnv(workerEnvironment(source, env, backboneDir, scratch));
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    workers = await stages.startWorkers(names, workerEnv, {
      logger: createLogger({ name: 'serve', level: env.LOG_LEVEL }),
      webhookAllowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
    });
    log(
      `workers ${names.join(', ')} on queue prefix ${env.QUEUE_PREFIX} (device ${workerEnv.DEVICE}, concurrency ${workerEnv.CONCURRENCY}${workerEnv.THREADS ? `, ${workerEnv.THREADS} threads` : ''})`,
    );
  } catch (e) {
    removeScratch();
    throw e;
  }
  return {
    names,
    close: async () => {
      await workers.close();
      removeScratch();
    },
  };
}
