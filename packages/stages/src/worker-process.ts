/**
 * The process around one stage worker app: clients from the validated env, the backbone, the queue worker with
 * the app's handlers, and a graceful shutdown on SIGTERM/SIGINT (running stages checkpoint, their jobs go back
 * to waiting, clients close). Each app's src/index.ts is a call to this.
 */
import { mkdirSync } from 'node:fs';
import { createDb } from '@dynasyn/db';
import * as queue from '@dynasyn/queue';
import { createBlobStore } from '@dynasyn/storage';
import { resolveBackbone } from './backbone.js';
import { stageDbFrom } from './db-adapter.js';
import { PermanentStageError } from './errors.js';
import type { StageCall } from './lifecycle.js';
import type { StageDeps } from './ports.js';
import type { WorkerEnv } from './worker-env.js';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: 100 } as const;

/** One JSON line per event on stderr. */
export function jsonLogger(level: WorkerEnv['LOG_LEVEL'], base: object = {}) {
  const at = (lvl: number, name: string) => (obj: object, msg?: string) => {
    if (lvl >= LEVELS[level]) process.stderr.write(`${JSON.stringify({ level: name, time: Date.now(), ...base, ...obj, ...(msg ? { msg } : {}) })}\n`);
  };
  return { info: at(30, 'info'), warn: at(40, 'warn'), error: at(50, 'error') };
}

/** A stage handler as a BullMQ job handler: the last attempt fails the personalization; permanent errors skip retries. */
export function stageJob(handler: (call: StageCall) => Promise<unknown>) {
  return async (p: { personalizationId: string }, ctx: queue.JobContext): Promise<unknown> => {
    try {
      return await handler({ personalizationId: p.personalizationId, signal: ctx.signal, finalAttempt: ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1) });
    } catch (e) {
      if (e instanceof PermanentStageError) throw new queue.UnrecoverableError(`${e.code}: ${e.message}`);
      throw e;
    }
  };
}

export interface WorkerProcess {
  close(): Promise<void>;
}

/** Starts the worker of one app; `build` makes its queue worker from the shared deps. */
export async function startWorkerProcess(
  name: string,
  env: WorkerEnv,
  build: (deps: StageDeps, options: queue.CreateWorkerOptions) => queue.QueueWorker,
): Promise<WorkerProcess> {
  const logger = jsonLogger(env.LOG_LEVEL, { app: `worker-${name}` });
  const s3 = {
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}), ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : {}),
  };
  const storage = createBlobStore(env.STORAGE_URL, { s3 });
  const backbone = await resolveBackbone({ backbone: env.BACKBONE, cacheDir: env.CACHE_DIR, openStore: (url) => createBlobStore(url, { s3 }) });
  mkdirSync(env.WORK_DIR, { recursive: true });
  const db = createDb(env.DATABASE_URL);
  const producer = await queue.connectRedis(env.REDIS_URL, 'producer', logger);
  const set = queue.createQueues({ connection: producer, prefix: env.QUEUE_PREFIX });
  const deps: StageDeps = {
    db: stageDbFrom(db, async (deliveryId) => { await queue.enqueue(set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId }); }),
    storage, backbone, workDir: env.WORK_DIR, logger, executionProviders: env.DEVICE === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    ...(env.THREADS !== undefined ? { intraOpNumThreads: env.THREADS } : {}),
  };
  const worker = build(deps, {
    connection: queue.redisOptions(env.REDIS_URL, 'worker'), prefix: env.QUEUE_PREFIX, logger, device: env.DEVICE, concurrency: env.CONCURRENCY,
    lockDuration: env.STAGE_LOCK_SECONDS * 1000,
    // a killed worker's job is taken up soon after its lock runs out
    stalledInterval: Math.min(30_000, Math.max(1_000, env.STAGE_LOCK_SECONDS * 500)),
    closeTimeoutMs: env.SHUTDOWN_GRACE_SECONDS * 500, abortGraceMs: env.SHUTDOWN_GRACE_SECONDS * 400,
  });
  logger.info({ backbone, device: env.DEVICE, concurrency: env.CONCURRENCY }, 'worker started');
  let closing: Promise<void> | undefined;
  return {
    close: () => (closing ??= (async () => {
      await worker.close();
      await queue.closeQueues(set);
      producer.disconnect();
      await db.close();
      logger.info({}, 'worker stopped');
    })()),
  };
}

/** SIGTERM/SIGINT close the process once; a second signal exits at once. */
export function closeOnSignals(p: WorkerProcess, logger = jsonLogger('info')): void {
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(130);
      stopping = true;
      logger.info({ signal: sig }, 'shutting down');
      p.close().then(() => process.exit(0), (e: Error) => { logger.error({ err: e.message }, 'shutdown failed'); process.exit(1); });
    });
  }
}
