/**
 * The stage workers `dynasyn serve` runs in its own process: the handlers of the worker apps on the queues of
 * packages/queue, over the same Postgres, Redis and storage as the API. WORKERS picks them (comma list of
 * augment, gsa, train, sample, webhooks; `none` for an API-only process, e.g. the API benchmark); default all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './errors.js';
import { s3OptionsFrom, type ServiceEnv } from './service-env.js';

export const WORKER_NAMES = ['augment', 'gsa', 'train', 'sample', 'webhooks'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

export interface RunningWorkers {
  names: WorkerName[];
  /** Stops taking jobs; running stages checkpoint and stop; then the clients close. */
  close(): Promise<void>;
}

export function selectedWorkers(spec: string | undefined): WorkerName[] {
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') return [...WORKER_NAMES];
  if (spec.trim() === 'none') return [];
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(WORKER_NAMES as readonly string[]).includes(n)) throw new CliError(`WORKERS: unknown worker ${JSON.stringify(n)} (known: ${WORKER_NAMES.join(', ')}, none)`);
  return [...new Set(names)] as WorkerName[];
}

/** A pino-shaped logger on stderr, one JSON line per event (level filter from LOG_LEVEL). */
function stderrLogger(level: ServiceEnv['LOG_LEVEL']) {
  const rank = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: 100 }[level];
  const at = (lvl: number, name: string) => (obj: object, msg?: string) => {
    if (lvl >= rank) process.stderr.write(`${JSON.stringify({ level: name, time: Date.now(), ...obj, ...(msg ? { msg } : {}) })}\n`);
  };
  return { info: at(30, 'info'), warn: at(40, 'warn'), error: at(50, 'error') };
}

export async function startWorkers(env: ServiceEnv, backboneDir: string, log: (line: string) => void): Promise<RunningWorkers> {
  const names = selectedWorkers(env.WORKERS);
  if (names.length === 0) return { names, close: async () => undefined };
  // loaded only when workers run: onnxruntime, Prisma and BullMQ stay out of the other commands
  const [{ createDb }, { createBlobStore }, queue, { stageDbFrom, stageJob }, webhooks, augment, gsa, train, sample] = await Promise.all([
    import('@dynasyn/db'), import('@dynasyn/storage'), import('@dynasyn/queue'), import('@dynasyn/stages'), import('@dynasyn/webhooks'),
    import('@dynasyn/worker-augment/handler'), import('@dynasyn/worker-gsa/handler'), import('@dynasyn/worker-train/handler'), import('@dynasyn/worker-sample/handler'),
  ]);
  const logger = stderrLogger(env.LOG_LEVEL);
  const db = createDb(env.DATABASE_URL);
  const storage = createBlobStore(env.STORAGE_URL, { s3: s3OptionsFrom(env) });
  const producer = await queue.connectRedis(env.REDIS_URL, 'producer', logger);
  const set = queue.createQueues({ connection: producer, prefix: env.QUEUE_PREFIX });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-serve-'));
  const deps = {
    db: stageDbFrom(db, async (deliveryId: string) => { await queue.enqueue(set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId }); }),
    storage, backbone: backboneDir, workDir, logger,
  };

  const options = {
    connection: queue.redisOptions(env.REDIS_URL, 'worker'), prefix: env.QUEUE_PREFIX, logger,
    lockDuration: env.STAGE_LOCK_SECONDS * 1000,
    // a killed process's job is found soon after its lock runs out
    stalledInterval: Math.min(30_000, Math.max(1_000, env.STAGE_LOCK_SECONDS * 500)),
    closeTimeoutMs: Math.max(1_000, env.SHUTDOWN_GRACE_SECONDS * 400),
    abortGraceMs: Math.max(1_000, env.SHUTDOWN_GRACE_SECONDS * 400),
  };
  const generate = sample.createGenerateHandler(deps);
  const factories: Record<WorkerName, () => import('@dynasyn/queue').QueueWorker | Promise<import('@dynasyn/queue').QueueWorker>> = {
    augment: () => queue.createWorker(queue.augmentCatalog, { 'personalization.augment': stageJob(augment.createAugmentHandler(deps)) }, options),
    gsa: () => queue.createWorker(queue.gsaCatalog, { 'personalization.gsa': stageJob(gsa.createGsaHandler(deps)) }, options),
    train: () => queue.createWorker(queue.trainCatalog, { 'personalization.train': stageJob(train.createTrainHandler(deps)) }, options),
    sample: () => queue.createWorker(queue.sampleCatalog, {
      'personalization.sample': stageJob(sample.createSampleHandler(deps)),
      'samples.generate': async (p, ctx) => generate({ personalizationId: p.personalizationId, requestId: p.requestId, sampleIds: p.sampleIds, signal: ctx.signal }),
    }, options),
    // signed deliveries with retries and the lost-job sweep; short HTTP calls: many at once, the ordinary lock
    webhooks: () => webhooks.startWebhookWorker(db, set, options.connection, {
      logger, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE, closeTimeoutMs: options.closeTimeoutMs, abortGraceMs: options.abortGraceMs,
    }),
  };
  const running = await Promise.all(names.map((n) => factories[n]()));
  log(`workers ${names.join(', ')} on queue prefix ${env.QUEUE_PREFIX}`);
  return {
    names,
    close: async () => {
      await Promise.all(running.map((w) => w.close()));
      await queue.closeQueues(set);
      producer.disconnect();
      await db.close();
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
