/**
 * A Redis outage seen by a worker process's clients (a producer and its queues, a worker with its blocking and
 * heartbeat connections), on a Redis of the test's own: one line when it begins, one when it ends, nothing
 * printed by ioredis or BullMQ, a producer that fails at once, and a worker that takes jobs again afterwards.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { defineJob, idSchema, type QueueCatalog } from './catalog.js';
import { isRedisConnectionError } from './connection-outage.js';
import { connectRedis, redisOptions } from './connection.js';
import { closeQueues, createQueues, definitionJobOptions, type QueueSet } from './queues.js';
import { redisServer, type RedisServer } from './testing/redis-server.js';
import { waitFor } from './testing/wait.js';
import { createWorker, type QueueWorker } from './worker.js';

const catalog = {
  queue: 'chores',
  jobs: {
    'chore.run': defineJob({
      payload: z.strictObject({ v: z.literal(1).default(1), choreId: idSchema }),
      retry: { attempts: 1, backoff: { type: 'fixed', delay: 50 } },
      jobId: (p) => `chore.run-${p.choreId}`,
    }),
  },
} as const satisfies QueueCatalog;

const lines: { level: string; msg: string }[] = [];
const logger = {
  info: (_obj: object, msg = '') => lines.push({ level: 'info', msg }),
  warn: (_obj: object, msg = '') => lines.push({ level: 'warn', msg }),
  error: (_obj: object, msg = '') => lines.push({ level: 'error', msg }),
};
const outageLines = () => lines.filter((l) => l.msg.startsWith('Redis unreachable'));
const recoveryLines = () => lines.filter((l) => l.msg === 'Redis reachable again');
const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
const consoleWarn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);

let redis: RedisServer;
let producer: Redis;
let set: QueueSet;
let worker: QueueWorker;
const done: string[] = [];

beforeAll(async () => {
  redis = await redisServer();
  producer = await connectRedis(redis.url, 'producer', logger);
  set = createQueues({ connection: producer, prefix: 'outage', logger });
  worker = createWorker(
    catalog,
    { 'chore.run': async (p) => done.push(p.choreId) },
    { connection: redisOptions(redis.url, 'worker'), prefix: 'outage', logger, heartbeatIntervalMs: 200, closeTimeoutMs: 2_000 },
  );
  await worker.worker.waitUntilReady();
});

afterAll(async () => {
  await worker?.close();
  if (set) await closeQueues(set);
  producer?.disconnect();
  await redis?.stop();
  consoleError.mockRestore();
  consoleWarn.mockRestore();
});

// a queue of the test's own catalog over the producer's connection, as createQueues makes them
async function add(choreId: string) {
  const queue = new Queue(catalog.queue, { connection: producer, prefix: 'outage' });
  queue.on('error', () => undefined);
  try {
    const definition = catalog.jobs['chore.run'];
    return await queue.add('chore.run', { v: 1, choreId }, definitionJobOptions(definition, { v: 1, choreId }));
  } finally {
    await queue.close();
  }
}

describe('a worker process through a Redis outage', () => {
  it('(Redis up) runs a job', async () => {
    await add('before');
    await waitFor('the job before the outage', () => done.includes('before'));
  });

  it('fails a producer command at once while Redis is down, with an error that says so', async () => {
    await redis.stop();
    const started = Date.now();
    const err = await set.queues.sample.getJobCounts().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRedisConnectionError(err)).toBe(true);
    // loose: it used to wait for the reconnect
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('logs the outage once over many failed reconnects, and nothing else', async () => {
    await new Promise((r) => setTimeout(r, 3_000));
    expect(outageLines()).toHaveLength(1);
    expect(lines.filter((l) => l.level !== 'info' && !outageLines().includes(l))).toEqual([]);
    expect(consoleError.mock.calls).toEqual([]);
    expect(consoleWarn.mock.calls).toEqual([]);
  });

  it('(Redis back) logs the recovery once, and the worker takes jobs again', async () => {
    await redis.start();
    await waitFor('the recovery line', () => recoveryLines().length > 0, 15_000);
    await add('after');
    await waitFor('the job after the outage', () => done.includes('after'), 15_000);
    expect(outageLines()).toHaveLength(1);
    expect(recoveryLines()).toHaveLength(1);
    expect(consoleError.mock.calls).toEqual([]);
  });
});

describe('isRedisConnectionError', () => {
  it('tells an unreachable Redis from a failed command', () => {
    expect(isRedisConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRedisConnectionError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    expect(isRedisConnectionError(Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
    expect(isRedisConnectionError(new Error('ERR wrong number of arguments for command'))).toBe(false);
    expect(isRedisConnectionError(new TypeError('invalid payload for sample/samples.generate'))).toBe(false);
    expect(isRedisConnectionError('ECONNREFUSED')).toBe(false);
  });
});
