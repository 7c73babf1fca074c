/** The producer side: one BullMQ Queue per catalog, a FlowProducer, and a typed, idempotent `enqueue`. */
import { FlowProducer, Queue, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { catalogs, queueNames, type JobDefinition, type JobName, type PayloadInput, type QueueName } from './catalog.js';
import { queueErrorListener } from './connection-outage.js';
import { silentLogger, type Logger } from './logger.js';

/** An ioredis client (shared, left open by close) or options (each Queue opens its own). */
export type RedisConnection = Redis | RedisOptions;

export type QueueMap = { readonly [Q in QueueName]: Queue };

export interface QueueSet {
  readonly queues: QueueMap;
  readonly flowProducer: FlowProducer;
  /** Key prefix of every queue (BullMQ `prefix`). */
  readonly prefix: string;
}

export interface CreateQueuesOptions {
  /** Redis connection; a producer should fail fast (see `redisOptions(url, 'producer')`). */
  connection: RedisConnection;
  /** Key prefix shared by producers and workers of one deployment (tests use a random one). */
  prefix: string;
  /** Where errors of the queues go: a Redis outage once (connection-outage.ts), anything else each time. */
  logger?: Logger;
}

/**
 * Finished jobs are kept a while: bull-board shows them, the health page counts them, and a kept job id makes a
 * duplicate enqueue a no-op.
 */
export const keepFinishedJobs = {
  removeOnComplete: { age: 7 * 24 * 3600, count: 50_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 50_000 },
} as const satisfies JobsOptions;

export function createQueues(options: CreateQueuesOptions): QueueSet {
  const { prefix } = options;
  const connection = options.connection as ConnectionOptions; // ioredis and BullMQ spell the same options differently
  const queues = Object.fromEntries(
    queueNames.map((name) => [name, new Queue(name, { connection, prefix, defaultJobOptions: keepFinishedJobs })]),
  ) as unknown as QueueMap;
  const flowProducer = new FlowProducer({ connection, prefix });
  // Without a listener BullMQ prints a stack trace for each of the client's failed reconnects, per queue.
  const redis = options.connection instanceof Redis ? options.connection.options : options.connection;
  const logger = options.logger ?? silentLogger;
  for (const queue of Object.values(queues)) queue.on('error', queueErrorListener(redis, logger, 'queue error', { queue: queue.name }));
  flowProducer.on('error', queueErrorListener(redis, logger, 'flow producer error'));
  return { queues, flowProducer, prefix };
}

/** Closes every queue and the flow producer (a shared ioredis client stays open: its owner closes it). */
export async function closeQueues(set: QueueSet): Promise<void> {
  await Promise.all([...Object.values(set.queues).map((q) => q.close()), set.flowProducer.close()]);
}

/** Per-call overrides; the retry policy and job id come from the catalog. */
export interface EnqueueOptions {
  /** Milliseconds before the job may start. */
  delay?: number;
  /** BullMQ priority (1 = highest; unset jobs go first). */
  priority?: number;
  /** Tries instead of the catalog's (a job re-enqueued with the attempts its work has left). */
  attempts?: number;
}

/** The job definition of `queue`/`name`, or an error naming both. */
export function jobDefinition(queue: string, name: string): JobDefinition {
  const catalog = (catalogs as Record<string, { jobs: Record<string, JobDefinition> }>)[queue];
  if (!catalog) throw new Error(`unknown queue "${queue}" (queues: ${queueNames.join(', ')})`);
  const definition = Object.hasOwn(catalog.jobs, name) ? catalog.jobs[name] : undefined;
  if (!definition) {
    throw new Error(`unknown job "${name}" on queue "${queue}" (jobs: ${Object.keys(catalog.jobs).join(', ')})`);
  }
  return definition;
}

/** Validates a payload against its catalog schema; the error names the queue and job. */
export function parsePayload(queue: string, name: string, payload: unknown): Record<string, unknown> {
  const result = jobDefinition(queue, name).payload.safeParse(payload);
  if (!result.success) {
    throw new TypeError(`invalid payload for ${queue}/${name}: ${result.error.issues.map(formatIssue).join('; ')}`);
  }
  return result.data as Record<string, unknown>;
}

function formatIssue(issue: { path: PropertyKey[]; message: string }): string {
  return issue.path.length ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message;
}

/** BullMQ options of a catalog job: deterministic id, retry policy, retention. */
export function jobOptions(queue: string, name: string, payload: Record<string, unknown>): JobsOptions {
  return definitionJobOptions(jobDefinition(queue, name), payload);
}

/** BullMQ options of any job definition (also one from a catalog outside `catalogs`) for a parsed payload. */
export function definitionJobOptions(definition: JobDefinition, payload: Record<string, unknown>): JobsOptions {
  return { jobId: definition.jobId(payload), attempts: definition.retry.attempts, backoff: { ...definition.retry.backoff } };
}

/**
 * Adds a job after validating its payload. The job id is deterministic, so enqueueing the same work twice
 * returns the existing job and adds nothing.
 */
export async function enqueue<Q extends QueueName, N extends JobName<Q>>(
  queues: QueueMap,
  queue: Q,
  name: N,
  payload: PayloadInput<Q, N>,
  opts: EnqueueOptions = {},
): Promise<Job> {
  const data = parsePayload(queue, name, payload);
  return queues[queue].add(name, data, { ...jobOptions(queue, name, data), ...opts });
}
