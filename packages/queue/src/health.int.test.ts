import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { UnrecoverableError, Worker } from 'bullmq';
import { sampleCatalog, trainCatalog } from './catalog.js';
import { connectRedis, evictionPolicy } from './connection.js';
import { prometheusMetrics, queueHealth, type QueueHealth } from './health.js';
import { closeQueues, createQueues, enqueue, type QueueSet } from './queues.js';
import { createWorker } from './worker.js';
import { deletePrefix, randomPrefix, testRedisOptions, waitFor } from './testing/redis.js';

const prefix = randomPrefix('health');
const redis = new Redis(testRedisOptions);
let set: QueueSet;
let health: Record<string, QueueHealth>;
let manual: Worker;
const t0 = Date.now();

beforeAll(async () => {
  set = createQueues({ connection: testRedisOptions, prefix });
  const { queues } = set;
  // augment: two waiting jobs, no worker.
  await enqueue(queues, 'augment', 'personalization.augment', { personalizationId: 'a1', tenantId: 't' });
  await enqueue(queues, 'augment', 'personalization.augment', { personalizationId: 'a2', tenantId: 't' });
  // gsa: one delayed far ahead, one whose delay is already over (due, not yet promoted: no worker runs).
  await enqueue(queues, 'gsa', 'personalization.gsa', { personalizationId: 'g1', tenantId: 't' }, { delay: 60_000 });
  await enqueue(queues, 'gsa', 'personalization.gsa', { personalizationId: 'g2', tenantId: 't' }, { delay: 1 });
  // train: one job failing for good, one completing, handled by a live worker that stays up.
  const train = createWorker(
    trainCatalog,
    {
      'personalization.train': async (p) => {
        if (p.personalizationId === 'bad') throw new UnrecoverableError('no');
      },
    },
    { connection: testRedisOptions, prefix, heartbeatIntervalMs: 200, device: 'cuda' },
  );
  await enqueue(queues, 'train', 'personalization.train', { personalizationId: 'bad', tenantId: 't' });
  await enqueue(queues, 'train', 'personalization.train', { personalizationId: 'good', tenantId: 't' });
  await waitFor(
    'train jobs to finish',
    async () => (await queues.train.getJobCounts('completed', 'failed')).failed === 1 && (await queues.train.getCompletedCount()) === 1,
  );
  await waitFor('a train heartbeat', async () => (await redis.exists(`${prefix}:heartbeat:train:${train.workerId}`)) === 1);
  // sample: one active job whose worker vanished (lock gone), the stalled case.
  await enqueue(queues, 'sample', 'samples.generate', { personalizationId: 's', tenantId: 't', requestId: 'r1', sampleIds: ['x'] });
  manual = new Worker(sampleCatalog.queue, null, { connection: { ...testRedisOptions, maxRetriesPerRequest: null }, prefix });
  const taken = await manual.getNextJob('token-1');
  await redis.del(`${queues.sample.toKey(taken!.id!)}:lock`);
  await sleep(50);
  health = Object.fromEntries((await queueHealth(queues, redis, prefix)).map((h) => [h.queue, h]));
  await train.close();
});

afterAll(async () => {
  await manual.close(true);
  await closeQueues(set);
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

test('waiting jobs count toward depth, with the age of the oldest', () => {
  const h = health.augment!;
  expect(h).toMatchObject({ waiting: 2, prioritized: 0, delayed: 0, delayedDue: 0, active: 0, failed: 0, depth: 2 });
  expect(h.oldestWaitingAgeMs).toBeGreaterThanOrEqual(50);
  expect(h.oldestWaitingAgeMs).toBeLessThanOrEqual(Date.now() - t0);
  expect(h.workers).toEqual([]);
});

test('delayed jobs count toward depth only once due', () => {
  expect(health.gsa).toMatchObject({ waiting: 0, delayed: 2, delayedDue: 1, depth: 1 });
});

test('finished jobs, throughput and live workers are reported', () => {
  const h = health.train!;
  expect(h).toMatchObject({ completed: 1, failed: 1, waiting: 0, depth: 0, oldestWaitingAgeMs: null });
  expect(h.throughput).toEqual({ windowMinutes: 5, completedPerMinute: 1 / 5, failedPerMinute: 1 / 5 });
  expect(h.workers).toHaveLength(1);
  expect(h.workers[0]).toMatchObject({ queue: 'train', device: 'cuda', activeJobs: 0 });
});

test('an active job whose lock expired counts as stalled', () => {
  expect(health.sample).toMatchObject({ active: 1, stalled: 1, waiting: 0 });
});

test('prometheusMetrics renders every queue as gauges', () => {
  const text = prometheusMetrics(Object.values(health));
  expect(text).toContain('# TYPE dynasyn_queue_depth gauge');
  expect(text).toContain('dynasyn_queue_depth{queue="augment"} 2');
  expect(text).toContain('dynasyn_queue_jobs{queue="train",state="failed"} 1');
  expect(text).toContain('dynasyn_queue_stalled_jobs{queue="sample"} 1');
  expect(text).toContain('dynasyn_queue_workers{queue="train",device="cuda"} 1');
  expect(text).toContain('dynasyn_queue_throughput_per_minute{queue="train",outcome="completed"} 0.2');
  // Every sample line is `name{labels} number`.
  for (const line of text
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('#'))) {
    expect(line).toMatch(/^dynasyn_queue_[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/);
  }
});

test('connectRedis reaches the server and reads its eviction policy; an unreachable one fails naming the URL', async () => {
  const warnings: string[] = [];
  const logger = { info() {}, error() {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
  const client = await connectRedis('redis://127.0.0.1:6379', 'producer', logger);
  const policy = await evictionPolicy(client);
  expect(typeof policy).toBe('string');
  expect(warnings.length).toBe(policy === 'noeviction' ? 0 : 1);
  client.disconnect();
  await expect(connectRedis('redis://:pw@127.0.0.1:1', 'producer')).rejects.toThrow(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
});
