/**
 * The consumer side: a BullMQ Worker for one catalog whose handler map must cover every job of the catalog
 * (a missing handler fails to compile). Payloads are parsed again on pickup; one that does not parse fails at
 * once with `UnrecoverableError`, since no retry can fix it. Defaults suit GPU stages: long locks renewed at half
 * their duration, one job at a time, and a close that lets the active job finish (or checkpoint) first.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { z } from 'zod';
import type { QueueCatalog } from './catalog.js';
import { createRedisClient } from './connection.js';
import { queueErrorListener } from './connection-outage.js';
import { startHeartbeat, type Device, type Heartbeat } from './heartbeat.js';
import { silentLogger, type Logger } from './logger.js';
import { keepFinishedJobs, type RedisConnection } from './queues.js';

/** What a handler gets besides its payload. */
export interface JobContext {
  /** The BullMQ job (id, attemptsMade, updateProgress, log). */
  job: Job;
  /** Aborted when the worker shuts down past its close timeout or the job is canceled on this worker. */
  signal: AbortSignal;
  logger: Logger;
  workerId: string;
  device: Device;
}

export type JobHandler<P> = (payload: P, ctx: JobContext) => Promise<unknown>;

/** One handler per job of the catalog: no more, no fewer. */
export type HandlerMap<C extends QueueCatalog> = {
  readonly [N in keyof C['jobs'] & string]: JobHandler<z.output<C['jobs'][N]['payload']>>;
};

export interface CreateWorkerOptions {
  /** Redis options (the worker's own connection; `maxRetriesPerRequest: null` is forced) or a client to duplicate. */
  connection: RedisConnection;
  /** Key prefix, the same as the producers'. */
  prefix: string;
  /** Device the handlers run their models on; recorded in the heartbeat and picks the concurrency. Default 'cpu'. */
  device?: Device;
  /** Jobs run in parallel: a number, or one per device (`{ cpu: 4, cuda: 1 }`). Default 1. */
  concurrency?: number | Partial<Record<Device, number>>;
  /** Lock lifetime in ms, renewed every half: a worker silent this long is taken for dead. Default 10 minutes. */
  lockDuration?: number;
  /** Ms between checks for jobs whose lock expired. Default 30 s. */
  stalledInterval?: number;
  /** Times a stalled job goes back to waiting before it fails. Default 2 (stages resume from checkpoints). */
  maxStalledCount?: number;
  /** Ms `close()` waits for active jobs before aborting their signal. Default 30 s. */
  closeTimeoutMs?: number;
  /** Ms after the abort for handlers to checkpoint and return, before the worker lets go. Default 10 s. */
  abortGraceMs?: number;
  /** Ms between heartbeats. Default 5 s; the key lives 3 intervals. */
  heartbeatIntervalMs?: number;
  /** Stable id of this worker. Default host-pid-random. */
  workerId?: string;
  logger?: Logger;
}

export interface QueueWorker {
  readonly worker: Worker;
  readonly workerId: string;
  /** Jobs running now. */
  activeJobs(): number;
  /**
   * Stops taking jobs, waits up to `closeTimeoutMs` for the active ones, then aborts their signal; a job
   * interrupted that way goes back to waiting (no attempt spent) for another worker to resume.
   */
  close(): Promise<void>;
}

const SHUTDOWN = 'worker shutting down';
const LOCK_LOST = 'job lock lost';

export function createWorker<C extends QueueCatalog>(catalog: C, handlers: HandlerMap<C>, options: CreateWorkerOptions): QueueWorker {
  const {
    connection,
    prefix,
    device = 'cpu',
    lockDuration = 10 * 60_000,
    stalledInterval = 30_000,
    maxStalledCount = 2,
    closeTimeoutMs = 30_000,
    abortGraceMs = 10_000,
    heartbeatIntervalMs = 5_000,
    logger = silentLogger,
  } = options;
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const concurrency = resolveConcurrency(options.concurrency, device);
  const queue = catalog.queue;
  let active = 0;
  let shuttingDown = false;

  // Three parameters: BullMQ passes the abort signal only to processors that declare it.
  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const definition = Object.hasOwn(catalog.jobs, job.name) ? catalog.jobs[job.name] : undefined;
    const handler = (handlers as Record<string, JobHandler<unknown>>)[job.name];
    if (!definition || !handler) {
      throw new UnrecoverableError(`queue "${queue}" has no job "${job.name}" (job ${job.id})`);
    }
    const parsed = definition.payload.safeParse(job.data);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i: { path: PropertyKey[]; message: string }) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
      throw new UnrecoverableError(`invalid payload for ${queue}/${job.name} (job ${job.id}): ${issues.join('; ')}`);
    }
    const jobSignal = signal ?? new AbortController().signal;
    active += 1;
    try {
      const jobLogger = childLogger(logger, { queue, job: job.name, jobId: job.id });
      const result = await handler(parsed.data, { job, signal: jobSignal, logger: jobLogger, workerId, device });
      if (interruptedByShutdown(jobSignal)) await requeue(job, token);
      return result;
    } catch (err) {
      if (interruptedByShutdown(jobSignal)) await requeue(job, token);
      throw err;
    } finally {
      active -= 1;
    }
  };

  const interruptedByShutdown = (signal: AbortSignal): boolean => shuttingDown && signal.aborted;
  // The job was cut short by our own shutdown, not by a fault: back to waiting without spending an attempt.
  const requeue = async (job: Job, token: string | undefined): Promise<never> => {
    await job.moveToWait(token);
    logger.warn({ queue, jobId: job.id }, 'job interrupted by worker shutdown; moved back to waiting');
    throw new WaitingError();
  };

  const worker = new Worker(queue, processor, {
    connection: workerConnection(connection),
    prefix,
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
    name: workerId,
    metrics: { maxDataPoints: 24 * 60 },
    ...keepFinishedJobs,
  });
  // connection errors: one line per outage (connection-outage.ts), not one per reconnect attempt
  worker.on('error', queueErrorListener(baseOptions(connection), logger, 'worker error', { queue }));
  worker.on('failed', (job, err) => logger.warn({ queue, job: job?.name, jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message }, 'job failed'));
  worker.on('stalled', (jobId) => logger.warn({ queue, jobId }, 'job stalled (its worker stopped renewing the lock)'));
  // A lock that cannot be renewed is gone (Redis lost the job, or the stalled check gave it to another worker):
  // this run stops (a training checkpoints) rather than race another one for the same job.
  worker.on('lockRenewalFailed', (jobIds) => {
    logger.error({ queue, jobIds }, 'job lock renewal failed: its run here is aborted');
    for (const id of jobIds) worker.cancelJob(id, LOCK_LOST);
  });

  const heartbeatClient = heartbeatConnection(connection, logger);
  const startedAt = new Date().toISOString();
  const heartbeat: Heartbeat = startHeartbeat(
    heartbeatClient,
    () => ({ workerId, host: hostname(), pid: process.pid, queue, device, startedAt, activeJobs: active, concurrency }),
    { prefix, intervalMs: heartbeatIntervalMs, ttlMs: 3 * heartbeatIntervalMs, logger },
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      // pause() stops fetching and resolves once the active jobs have finished.
      const drained = worker.pause().then(() => true);
      if (!(await within(drained, closeTimeoutMs))) {
        logger.warn({ queue, active, closeTimeoutMs }, 'close timeout: aborting active jobs');
        worker.cancelAllJobs(SHUTDOWN);
        if (!(await within(drained, abortGraceMs))) {
          logger.error({ queue, active }, 'active jobs ignored the abort; leaving them to the stalled-job check');
        }
      }
      await worker.close(true);
      await heartbeat.stop();
      heartbeatClient.disconnect();
    })();
    return closing;
  };

  return { worker, workerId, activeJobs: () => active, close };
}

/** True when `done` settles within `ms`; the timer is cleared either way so it cannot hold the process open. */
async function within(done: Promise<boolean>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([done, sleep(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

function resolveConcurrency(concurrency: CreateWorkerOptions['concurrency'], device: Device): number {
  const n = typeof concurrency === 'number' ? concurrency : (concurrency?.[device] ?? 1);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`worker concurrency must be a positive integer, got ${n}`);
  return n;
}

/**
 * Options, never a shared client: the worker then owns (and closes) its connections, and BullMQ refuses worker
 * connections that give up on commands.
 */
function workerConnection(connection: RedisConnection): ConnectionOptions {
  // a producer client's options fail fast (no offline queue, lazy): a worker's connections wait for Redis instead
  return { ...baseOptions(connection), maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false } as ConnectionOptions;
}

const baseOptions = (connection: RedisConnection): RedisOptions => (connection instanceof Redis ? connection.options : connection);

/** A separate, fail-fast client: a heartbeat that cannot be written is skipped, not queued. */
function heartbeatConnection(connection: RedisConnection, logger: Logger): Redis {
  return createRedisClient({ ...baseOptions(connection), maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false }, logger);
}

function childLogger(logger: Logger, bindings: object): Logger {
  const withBindings = logger as Logger & { child?: (b: object) => Logger };
  return typeof withBindings.child === 'function' ? withBindings.child(bindings) : logger;
}
