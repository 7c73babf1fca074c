/** packages/queue seen through the API's port: the flow, `samples.generate`, health for /metrics and /ops. */
import { enqueue, enqueuePersonalizationFlow, queueHealth, type QueueSet } from '@dynasyn/queue';
import type { Redis } from 'ioredis';
import type { ApiQueues } from './deps.js';

export function apiQueues(set: QueueSet, redis: Redis): ApiQueues {
  return {
    async enqueuePersonalization(p) {
      await enqueuePersonalizationFlow(set.flowProducer, p);
    },
    async enqueueSamples(p) {
      await enqueue(set.queues, 'sample', 'samples.generate', { v: 1, ...p });
    },
    health: () => queueHealth(set.queues, redis, set.prefix),
    queues: () => Object.values(set.queues),
  };
}
