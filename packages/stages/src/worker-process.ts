/**
 * The process around the queue workers, the same for a worker app (one stage queue per deployment) and for
 * `dynasyn serve` (one such process per queue, each the CLI's hidden `dynasyn worker <name>`): clients from the
 * validated env, the backbone (and the CLIP and judge of a sample worker), the queue workers with their handlers, and a graceful shutdown (running stages
 * checkpoint, their jobs go back to waiting, clients close). Lock, stall and close times, device and threads are derived here and nowhere else.
 */
import { mkdirSync } from 'node:fs';
import { s3OptionsFrom, stageLeaseSeconds } from '@dynasyn/config';
import { createDb } from '@dynasyn/db';
import { createLogger } from '@dynasyn/logger';
import * as queue from '@dynasyn/queue';
import { createBlobStore } from '@dynasyn/storage';
import { startWebhookWorker } from '@dynasyn/webhooks';
import { resolveBackbone } from './backbone.js';
import { resolveClipModel } from './clip-model.js';
import { resolveJudgeModel } from './judge-model.js';
import { stageDbFrom } from './db-adapter.js';
import { createStageWorker, STAGE_QUEUES, type StageQueue } from './handlers/index.js';
import { startReconciler } from './reconciler.js';
import type { StageDeps, StageLogger } from './ports.js';
import type { WorkerEnv } from './worker-env.js';

/** Every queue a worker process can serve: the four stages, and the webhook deliveries. */
export const WORKER_NAMES = [...STAGE_QUEUES, 'webhooks'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

const isStage = (n: WorkerName): n is StageQueue => (STAGE_QUEUES as readonly string[]).includes(n);

/**
 * A stage's job lock: STAGE_LOCK_SECONDS, at most 20 s. BullMQ renews the lock on a timer (every quarter to half of
 * it), not per step, so a long training step never lets it run out; what its length decides is how long a dead
 * worker's job waits before another takes it up (lock + one stalled check: under 30 s). A Redis outage longer
 * than the lock re-runs the job from its checkpoint: the first run aborts when its renewal fails (packages/queue).
 * The lease of a hung stage is a separate setting (STAGE_LEASE_SECONDS, stageLeaseMs).
 */
export const stageLockMs = (env: Pick<WorkerEnv, 'STAGE_LOCK_SECONDS'>): number => Math.min(env.STAGE_LOCK_SECONDS, 20) * 1000;

/**
 * A stage's lease: STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset (@dynasyn/config stageLeaseSeconds). A job
 * whose attempt wrote nothing for this long while its worker still holds the lock is taken over by the reconciler.
 */
export const stageLeaseMs = (env: Pick<WorkerEnv, 'STAGE_LOCK_SECONDS' | 'STAGE_LEASE_SECONDS'>): number => stageLeaseSeconds(env) * 1000;

/** BullMQ settings of every worker, from the env. */
export function queueWorkerOptions(env: WorkerEnv, logger: StageLogger): queue.CreateWorkerOptions & { closeTimeoutMs: number; abortGraceMs: number } {
  return {
    connection: queue.redisOptions(env.REDIS_URL, 'worker'),
    prefix: env.QUEUE_PREFIX,
    logger,
    device: env.DEVICE,
    concurrency: env.CONCURRENCY,
    lockDuration: stageLockMs(env),
    // a killed worker's job is taken up at most one check after its lock runs out
    stalledInterval: Math.min(5_000, Math.max(1_000, stageLockMs(env) / 4)),
    // half the grace for running jobs to end, then an abort and 0.4 of it to checkpoint: a tenth is left for
    // the clients to close before the orchestrator's (or serve's) hard stop at SHUTDOWN_GRACE_SECONDS
    closeTimeoutMs: env.SHUTDOWN_GRACE_SECONDS * 500,
    abortGraceMs: env.SHUTDOWN_GRACE_SECONDS * 400,
  };
}

/** Execution providers and threads of this worker's onnxruntime sessions (the stages' and the CLIP's). */
const sessionRuntime = (env: WorkerEnv): Pick<StageDeps, 'executionProviders' | 'intraOpNumThreads'> => ({
  executionProviders: env.DEVICE === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
  ...(env.THREADS !== undefined ? { intraOpNumThreads: env.THREADS } : {}),
});

/** The stage handlers' ports over the env's Postgres and storage; webhook events are enqueued on `set`. */
export function stageDepsOf(
  env: WorkerEnv,
  clients: {
    db: ReturnType<typeof createDb>;
    set: queue.QueueSet;
    backbone: string;
    clipModel?: string | undefined;
    judgeModel?: string | undefined;
    logger: StageLogger;
  },
): StageDeps {
  return {
    db: stageDbFrom(clients.db, async (deliveryId) => {
      await queue.enqueue(clients.set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId });
    }),
    storage: createBlobStore(env.STORAGE_URL, { s3: s3OptionsFrom(env) }),
    backbone: clients.backbone,
    ...(clients.clipModel !== undefined ? { clipModel: clients.clipModel } : {}),
    ...(clients.judgeModel !== undefined ? { judgeModel: clients.judgeModel } : {}),
    workDir: env.WORK_DIR,
    logger: clients.logger,
    ...sessionRuntime(env),
  };
}

export interface WorkerProcess {
  /** The queues served. */
  names: readonly WorkerName[];
  /** Stops taking jobs; running stages checkpoint and stop; then the clients close. Idempotent. */
  close(): Promise<void>;
}

export interface StartWorkersOptions {
  /** Default: JSON lines on stderr at env.LOG_LEVEL, tagged with the app. */
  logger?: StageLogger;
  /** Private networks webhook deliveries may reach (WEBHOOK_ALLOW_CIDRS; tests, a local stack). Default none. */
  webhookAllowCidrs?: readonly string[];
}

/** Starts the queue workers `names` in this process over one set of clients. */
export async function startWorkers(names: readonly WorkerName[], env: WorkerEnv, o: StartWorkersOptions = {}): Promise<WorkerProcess> {
  const logger = o.logger ?? createLogger({ name: names.length === 1 ? `worker-${names[0]}` : 'workers', level: env.LOG_LEVEL });
  const openStore = (url: string) => createBlobStore(url, { s3: s3OptionsFrom(env) });
  // first, as it is quick to refuse: only the sample stage scores with a CLIP, so only its worker loads one
  const clipModel = names.includes('sample')
    ? await resolveClipModel({ clipModel: env.CLIP_MODEL, cacheDir: env.CACHE_DIR, openStore, runtime: sessionRuntime(env) })
    : undefined;
  const judgeModel = names.includes('sample')
    ? await resolveJudgeModel({ judgeModel: env.JUDGE_MODEL, clipModel: env.CLIP_MODEL, cacheDir: env.CACHE_DIR, openStore })
    : undefined;
  const backbone = await resolveBackbone({
    backbone: env.BACKBONE,
    cacheDir: env.CACHE_DIR,
    openStore,
  });
  mkdirSync(env.WORK_DIR, { recursive: true });
  const db = createDb(env.DATABASE_URL);
  const producer = await queue.connectRedis(env.REDIS_URL, 'producer', logger);
  const set = queue.createQueues({ connection: producer, prefix: env.QUEUE_PREFIX });
  const deps = stageDepsOf(env, { db, set, backbone, clipModel, judgeModel, logger });
  const options = queueWorkerOptions(env, logger);
  const workers = await Promise.all(
    names.map((name) =>
      isStage(name)
        ? createStageWorker(name, deps, options)
        : // deliveries are short HTTP calls: its own concurrency and lock (packages/webhooks), the same close times
          startWebhookWorker(db, set, options.connection, {
            logger,
            allowCidrs: o.webhookAllowCidrs ?? [],
            closeTimeoutMs: options.closeTimeoutMs,
            abortGraceMs: options.abortGraceMs,
          }),
    ),
  );
  // every worker process reconciles (one pass at a time across them): work Redis lost is put back from Postgres
  const reconciler = startReconciler(
    { db, set, deps },
    {
      intervalMs: env.RECONCILE_INTERVAL_SECONDS * 1000,
      quietMs: 2 * stageLockMs(env),
      // the lease: a held job whose stage wrote nothing for this long is hung (a long step writes its progress)
      leaseMs: stageLeaseMs(env),
      maxRecoveries: env.RECONCILE_MAX_RECOVERIES,
    },
  );
  logger.info(
    {
      workers: names,
      backbone,
      ...(clipModel !== undefined ? { clipModel } : {}),
      ...(judgeModel !== undefined ? { judgeModel } : {}),
      device: env.DEVICE,
      concurrency: env.CONCURRENCY,
      threads: env.THREADS ?? null,
    },
    'workers started',
  );
  let closing: Promise<void> | undefined;
  return {
    names,
    close: () =>
      (closing ??= (async () => {
        await reconciler.stop();
        await Promise.all(workers.map((w) => w.close()));
        await queue.closeQueues(set);
        producer.disconnect();
        await db.close();
        logger.info({ workers: names }, 'workers stopped');
      })()),
  };
}

/** The process of one worker app: the workers of its queue. */
export const startWorkerProcess = (name: WorkerName, env: WorkerEnv, o: StartWorkersOptions = {}): Promise<WorkerProcess> => startWorkers([name], env, o);

export interface CloseOnSignalsOptions {
  /**
   * A signal after the first: `exit` (default) quits at once, for a person pressing Ctrl-C again; `ignore` lets
   * the close finish, for a process whose supervisor enforces the deadline itself (`dynasyn serve` sends SIGTERM
   * to a worker that the terminal's Ctrl-C, sent to the whole process group, has already reached).
   */
  repeat?: 'exit' | 'ignore';
}

/** SIGTERM/SIGINT close the process once, then exit 0 (1 if the close failed). */
export function closeOnSignals(p: WorkerProcess, logger: StageLogger = createLogger({ name: 'workers', level: 'info' }), o: CloseOnSignalsOptions = {}): void {
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (stopping) {
        if (o.repeat !== 'ignore') process.exit(130);
        return;
      }
      stopping = true;
      logger.info({ signal: sig }, 'shutting down');
      p.close().then(
        () => process.exit(0),
        (e: Error) => {
          logger.error({ err: e.message }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}
