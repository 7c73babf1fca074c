import { afterAll, afterEach, expect, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { z } from 'zod';
import { defineJob, idSchema, type QueueCatalog } from './catalog.js';
import { heartbeatKey, readHeartbeats, startHeartbeat } from './heartbeat.js';
import { definitionJobOptions } from './queues.js';
import { createWorker, type QueueWorker } from './worker.js';
import { deletePrefix, randomPrefix, testRedisOptions, waitFor } from './testing/redis.js';

const prefix = randomPrefix('worker');
const redis = new Redis(testRedisOptions);
const opened: { close(): Promise<void> }[] = [];

/** A catalog with a fast retry policy, so retries are observable within a test. */
const testCatalog = {
  queue: 'chores',
  jobs: {
    'chore.run': defineJob({
      payload: z.strictObject({ v: z.literal(1).default(1), choreId: idSchema }),
      retry: { attempts: 3, backoff: { type: 'fixed', delay: 50 } },
      jobId: (p) => `chore.run-${p.choreId}`,
    }),
  },
} as const satisfies QueueCatalog;

const queue = new Queue(testCatalog.queue, { connection: testRedisOptions, prefix });

async function add(data: Record<string, unknown>, jobId?: string) {
  const definition = testCatalog.jobs['chore.run'];
  const opts = definitionJobOptions(definition, { v: 1, choreId: 'x', ...data });
  return queue.add('chore.run', data, { ...opts, ...(jobId ? { jobId } : {}) });
}

function worker(handler: (p: { choreId: string }, signal: AbortSignal) => Promise<unknown>, extra = {}): QueueWorker {
  const w = createWorker(
    testCatalog,
    { 'chore.run': (p, ctx) => handler(p, ctx.signal) },
    {
      connection: testRedisOptions,
      prefix,
      heartbeatIntervalMs: 200,
      closeTimeoutMs: 5_000,
      ...extra,
    },
  );
  opened.push(w);
  return w;
}

const finished = (id: string) => async () => {
  const state = await queue.getJobState(id);
  return state === 'completed' || state === 'failed' ? state : undefined;
};

afterEach(async () => {
  await Promise.all(opened.splice(0).map((w) => w.close()));
});

afterAll(async () => {
  await queue.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

test('a retryable failure is retried per the catalog policy, then succeeds', async () => {
  const calls: number[] = [];
  worker(async () => {
    calls.push(Date.now());
    if (calls.length < 3) throw new Error('transient');
    return 'ok';
  });
  const job = await add({ choreId: 'retry-ok' });
  expect(await waitFor('the job to finish', finished(job.id!))).toBe('completed');
  expect(calls).toHaveLength(3);
  expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(45); // the fixed 50 ms backoff
});

test('a job that keeps failing fails after exactly `attempts` tries', async () => {
  let calls = 0;
  worker(async () => {
    calls += 1;
    throw new Error('still broken');
  });
  const job = await add({ choreId: 'retry-fail' });
  expect(await waitFor('the job to finish', finished(job.id!))).toBe('failed');
  const failed = await queue.getJob(job.id!);
  expect(calls).toBe(3);
  expect(failed!.attemptsMade).toBe(3);
  expect(failed!.failedReason).toBe('still broken');
});

test('an invalid payload fails at once with UnrecoverableError and never reaches the handler', async () => {
  let calls = 0;
  worker(async () => {
    calls += 1;
  });
  // A payload carrying bytes and a malformed id, as a buggy or hostile producer might send.
  const job = await add({ choreId: 'bad:id', image: 'iVBORw0KGgo...' }, 'chore.run-invalid');
  expect(await waitFor('the job to finish', finished(job.id!))).toBe('failed');
  const failed = await queue.getJob(job.id!);
  expect(calls).toBe(0);
  expect(failed!.attemptsMade).toBe(1);
  expect(failed!.failedReason).toMatch(/invalid payload for chores\/chore\.run/);
  expect(failed!.failedReason).toMatch(/choreId/);
});

test('a duplicate add with the same deterministic id is a no-op', async () => {
  const first = await add({ choreId: 'dup' });
  const second = await add({ choreId: 'dup' });
  expect(second.id).toBe(first.id);
  expect(await queue.getWaitingCount()).toBe(1);
  let calls = 0;
  worker(async () => {
    calls += 1;
  });
  await waitFor('the job to finish', finished(first.id!));
  expect(calls).toBe(1);
});

test('close() waits for the active job to finish', async () => {
  let started = false;
  let done = false;
  const w = worker(async () => {
    started = true;
    await sleep(700);
    done = true;
    return 'ok';
  });
  const job = await add({ choreId: 'slow' });
  await waitFor('the job to start', () => started);
  await w.close();
  expect(done).toBe(true);
  expect(await queue.getJobState(job.id!)).toBe('completed');
});

test('past the close timeout the job is aborted and goes back to waiting without spending an attempt', async () => {
  let started = false;
  const w = worker(
    (_p, signal) =>
      new Promise((_resolve, reject) => {
        started = true;
        signal.addEventListener('abort', () => reject(new Error('aborted: checkpointed')), { once: true });
      }),
    { closeTimeoutMs: 200, abortGraceMs: 2_000 },
  );
  const job = await add({ choreId: 'interrupted' });
  await waitFor('the job to start', () => started);
  const t0 = Date.now();
  await w.close();
  expect(Date.now() - t0).toBeLessThan(2_000);
  expect(await queue.getJobState(job.id!)).toBe('waiting');
  expect((await queue.getJob(job.id!))!.attemptsMade).toBe(0);
  // Another worker picks it up and finishes it.
  worker(async () => 'resumed');
  expect(await waitFor('the job to finish', finished(job.id!))).toBe('completed');
});

test('a worker heartbeat appears with its description and goes away on close', async () => {
  const w = worker(async () => undefined, { device: 'cuda', concurrency: { cpu: 4, cuda: 2 } });
  const beats = await waitFor('a heartbeat', async () => {
    const b = await readHeartbeats(redis, prefix, 'chores');
    return b.length ? b : undefined;
  });
  expect(beats).toHaveLength(1);
  expect(beats[0]).toMatchObject({ workerId: w.workerId, queue: 'chores', device: 'cuda', pid: process.pid, concurrency: 2, activeJobs: 0 });
  expect(w.worker.concurrency).toBe(2);
  const ttl = await redis.pttl(heartbeatKey(prefix, 'chores', w.workerId));
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(600);
  await w.close();
  expect(await readHeartbeats(redis, prefix, 'chores')).toEqual([]);
});

test('the heartbeat of a worker that died expires by itself', async () => {
  const client = new Redis(testRedisOptions);
  const describe = () => ({
    workerId: 'dead-worker',
    host: 'h',
    pid: 1,
    queue: 'chores',
    device: 'cpu' as const,
    startedAt: new Date().toISOString(),
    activeJobs: 1,
    concurrency: 1,
  });
  startHeartbeat(client, describe, { prefix, intervalMs: 100, ttlMs: 300 });
  await waitFor('a heartbeat', async () => (await readHeartbeats(redis, prefix, 'chores')).length === 1);
  client.disconnect(); // the process dies: no more beats, no cleanup
  await sleep(150);
  expect(await readHeartbeats(redis, prefix, 'chores')).toHaveLength(1);
  await waitFor('the heartbeat to expire', async () => (await readHeartbeats(redis, prefix, 'chores')).length === 0, 2_000);
});
