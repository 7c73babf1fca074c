import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { UnrecoverableError } from 'bullmq';
import { augmentCatalog, gsaCatalog, sampleCatalog, trainCatalog, type PersonalizationPayload } from './catalog.js';
import { enqueuePersonalizationFlow } from './flow.js';
import { closeQueues, createQueues, type QueueSet } from './queues.js';
import { createWorker, type QueueWorker } from './worker.js';
import { deletePrefix, randomPrefix, testRedisOptions, waitFor } from './testing/redis.js';

const prefix = randomPrefix('flow');
const redis = new Redis(testRedisOptions);
let set: QueueSet;
const workers: QueueWorker[] = [];
/** Stage runs in the order they happened, per personalization. */
const runs: { stage: string; id: string }[] = [];
const stagesOf = (id: string): string[] => runs.filter((r) => r.id === id).map((r) => r.stage);
/** Jobs in any queue that a worker could still run (0: the recorded runs are final, no waiting for them needed). */
async function runnableJobs(): Promise<number> {
  const counts = await Promise.all(Object.values(set.queues).map((q) => q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'waiting-children')));
  return counts.flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
}

function recorder(stage: string, failFor?: string) {
  return async (p: PersonalizationPayload): Promise<string> => {
    runs.push({ stage, id: p.personalizationId });
    await sleep(20); // a stage that takes time: a later stage starting early would show
    if (p.personalizationId === failFor) throw new UnrecoverableError(`${stage} cannot run for ${p.personalizationId}`);
    return `${stage} done`;
  };
}

beforeAll(async () => {
  set = createQueues({ connection: testRedisOptions, prefix });
  const common = { connection: testRedisOptions, prefix, closeTimeoutMs: 2_000, heartbeatIntervalMs: 1_000 };
  workers.push(
    createWorker(augmentCatalog, { 'personalization.augment': recorder('augment', 'p-fails-augment') }, common),
    createWorker(gsaCatalog, { 'personalization.gsa': recorder('gsa') }, common),
    createWorker(trainCatalog, { 'personalization.train': recorder('train') }, common),
    createWorker(sampleCatalog, { 'personalization.sample': recorder('sample'), 'samples.generate': async () => 'unused' }, common),
  );
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await closeQueues(set);
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

test('the flow runs augment, gsa, train, sample in that order, each after the previous one completed', async () => {
  const node = await enqueuePersonalizationFlow(set.flowProducer, { personalizationId: 'p-ok', tenantId: 't1' });
  expect(node.job.id).toBe('personalization.sample-p-ok');
  const root = set.queues.sample;
  await waitFor('the sample stage to complete', async () => (await root.getJobState(node.job.id!)) === 'completed');
  expect(stagesOf('p-ok')).toEqual(['augment', 'gsa', 'train', 'sample']);
  // Each parent started after its child finished.
  const jobs = await Promise.all([
    set.queues.augment.getJob('personalization.augment-p-ok'),
    set.queues.gsa.getJob('personalization.gsa-p-ok'),
    set.queues.train.getJob('personalization.train-p-ok'),
    set.queues.sample.getJob('personalization.sample-p-ok'),
  ]);
  for (let i = 1; i < jobs.length; i++) expect(jobs[i]!.processedOn!).toBeGreaterThanOrEqual(jobs[i - 1]!.finishedOn!);
  // The catalog's retry policy travels with every stage.
  expect(jobs.map((j) => j!.opts.attempts)).toEqual([3, 3, 3, 3]);
});

test('a duplicate enqueue is a no-op, both before and after the flow ran', async () => {
  const input = { personalizationId: 'p-dup', tenantId: 't1' };
  const [a, b] = await Promise.all([enqueuePersonalizationFlow(set.flowProducer, input), enqueuePersonalizationFlow(set.flowProducer, input)]);
  expect(a.job.id).toBe(b.job.id);
  await waitFor('the flow to complete', async () => (await set.queues.sample.getJobState(a.job.id!)) === 'completed');
  const again = await enqueuePersonalizationFlow(set.flowProducer, input);
  expect(again.job.id).toBe(a.job.id);
  expect(await runnableJobs()).toBe(0); // the second enqueue added nothing: no stage can run again
  expect(stagesOf('p-dup')).toEqual(['augment', 'gsa', 'train', 'sample']);
  expect(await set.queues.sample.getJobState(a.job.id!)).toBe('completed');
});

test('a stage that fails for good fails the whole chain and later stages never run', async () => {
  const node = await enqueuePersonalizationFlow(set.flowProducer, { personalizationId: 'p-fails-augment', tenantId: 't1' });
  await waitFor('the root to fail', async () => (await set.queues.sample.getJobState(node.job.id!)) === 'failed');
  expect(await set.queues.augment.getJobState('personalization.augment-p-fails-augment')).toBe('failed');
  expect(await set.queues.gsa.getJobState('personalization.gsa-p-fails-augment')).toBe('failed');
  expect(await set.queues.train.getJobState('personalization.train-p-fails-augment')).toBe('failed');
  const augment = await set.queues.augment.getJob('personalization.augment-p-fails-augment');
  expect(augment!.attemptsMade).toBe(1); // UnrecoverableError: no retry despite attempts 3
  expect(await runnableJobs()).toBe(0); // nothing left that a worker could still take up
  expect(stagesOf('p-fails-augment')).toEqual(['augment']);
});
