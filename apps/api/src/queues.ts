/**
 * packages/queue seen through the API's port: the flow, `samples.generate`, health for /metrics and /ops. An
 * enqueue that cannot reach Redis throws `Unavailable` (503 with Retry-After) within ENQUEUE_DEADLINE_MS: the
 * producer connection has no offline queue, so an outage fails at once, and the deadline bounds a Redis that
 * accepts the connection but does not answer.
 */
import { enqueue, enqueuePersonalizationFlow, isRedisConnectionError, queueHealth, type QueueSet } from '@dynasyn/queue';
import type { Redis } from 'ioredis';
import type { ApiQueues } from './deps.js';
import { Unavailable } from './unavailable.js';

/** How long a request waits for Redis to take its job before it answers 503. */
export const ENQUEUE_DEADLINE_MS = 2000;

export function apiQueues(set: QueueSet, redis: Redis, deadlineMs = ENQUEUE_DEADLINE_MS): ApiQueues {
  return {
    async enqueuePersonalization(p) {
      await withinDeadline(enqueuePersonalizationFlow(set.flowProducer, p), deadlineMs);
    },
    async enqueueSamples(p) {
      await withinDeadline(enqueue(set.queues, 'sample', 'samples.generate', { v: 1, ...p }), deadlineMs);
    },
    health: () => queueHealth(set.queues, redis, set.prefix),
    queues: () => Object.values(set.queues),
  };
}

/**
 * `work`, or `Unavailable` when Redis cannot be reached or takes longer than `ms`. A job whose enqueue timed out
 * may still land later; the create has been undone by then and the stage skips a personalization it cannot find.
 */
async function withinDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Unavailable(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, deadline]);
  } catch (err) {
    if (isRedisConnectionError(err)) throw new Unavailable((err as Error).message, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
