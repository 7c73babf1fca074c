/**
 * A Redis outage, on a Redis of the test's own: requests that need the queue fail fast with 503 UNAVAILABLE and
 * leave nothing behind, reads from Postgres go on, the outage and the recovery are logged once each, and a
 * create retried with its Idempotency-Key succeeds once Redis is back. The services are opened as index.ts opens
 * them (openServices: the producer connection, the queues and the webhook worker).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createDb, createScratchDatabase, type Db, type ScratchDatabase } from '@dynasyn/db';
import { createLogger } from '@dynasyn/logger';
import type { FastifyInstance } from 'fastify';
import { redisServer, type RedisServer } from '../../../packages/queue/src/testing/redis-server.js';
import { waitFor } from '../../../packages/queue/src/testing/wait.js';
import { parseEnv } from './env.js';
import { buildServer } from './server.js';
import { configFromEnv, openServices, type Services } from './services.js';
import { ADMIN_DATABASE_URL, createTenant, file, multipart, pngImage, pngMask } from './testing/harness.js';

/** The process's pino logger, as startApi makes it, writing to memory: the API's, the queues' and the webhook worker's lines. */
interface Line {
  level: number;
  msg: string;
  reqId?: string;
}
const lines: Line[] = [];
const logger = createLogger({ name: 'api', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } });
const WARN = 40;
const outageLines = () => lines.filter((l) => l.msg.startsWith('Redis unreachable'));
const recoveryLines = () => lines.filter((l) => l.msg === 'Redis reachable again');
/** Warnings and errors other than the outage line and the per-request log. */
const otherTrouble = () => lines.filter((l) => l.level >= WARN && !l.reqId && !l.msg.startsWith('Redis unreachable'));

let redis: RedisServer;
let scratch: ScratchDatabase;
let db: Db;
let dir: string;
let services: Services;
let server: FastifyInstance;
let alice: Awaited<ReturnType<typeof createTenant>>;
let image: Uint8Array;
let mask: Uint8Array;
// what ioredis and BullMQ print themselves ("[ioredis] Unhandled error event", stack traces)
const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
const consoleWarn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);

beforeAll(async () => {
  redis = await redisServer();
  scratch = await createScratchDatabase(ADMIN_DATABASE_URL, 'dynasyn_test_outage');
  dir = await mkdtemp(path.join(tmpdir(), 'dynasyn-outage-'));
  const env = parseEnv({ DATABASE_URL: scratch.url, REDIS_URL: redis.url, QUEUE_PREFIX: 'outage', STORAGE_URL: `file://${dir}`, DOCS: 'false' });
  services = await openServices(env, { migrate: true, logger });
  db = createDb(scratch.url, { maxConnections: 2 });
  server = buildServer({ deps: services.deps, config: configFromEnv(env), logger, rateLimitNamespace: 'outage-rl:' });
  await server.ready();
  alice = await createTenant(db, 'alice');
  image = await pngImage(32, 32);
  mask = await pngMask(32, 32);
});

afterAll(async () => {
  await server?.close();
  await services?.close();
  await db?.close();
  await scratch?.drop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  consoleError.mockRestore();
  consoleWarn.mockRestore();
});

function create(idempotencyKey: string) {
  const body = multipart([file('image', image), file('mask', mask), { name: 'classes', value: 'dog' }, { name: 'options', value: '{"preset":"tiny"}' }]);
  return server.inject({
    method: 'POST',
    url: '/v1/personalizations',
    payload: body.payload,
    headers: { ...body.headers, ...alice.auth, 'idempotency-key': idempotencyKey },
  });
}

/** Everything a create or a sample request stores: a refused one must leave all of it unchanged. */
async function footprint() {
  return {
    rows: await db.prisma.personalization.count(),
    samples: await db.prisma.sample.count(),
    keys: await db.prisma.idempotencyKey.count(),
    blobs: (await services.deps.storage.list('')).length,
  };
}

describe('Redis down', () => {
  let existing: string;

  it('(Redis up) creates a personalization', async () => {
    const res = await create('before-the-outage');
    expect(res.statusCode).toBe(202);
    existing = (res.json() as { id: string }).id;
    expect(outageLines()).toHaveLength(0);
  });

  it('answers a create 503 UNAVAILABLE with Retry-After, fast, and stores nothing', async () => {
    const before = await footprint();
    await redis.stop();
    const started = Date.now();
    const res = await create('during-the-outage');
    const elapsedMs = Date.now() - started;
    console.log(`create with Redis down answered ${res.statusCode} in ${elapsedMs} ms`);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ code: 'UNAVAILABLE', message: expect.any(String) });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // loose: the point is seconds, not the 26-46 s it took when requests waited for Redis to come back
    expect(elapsedMs).toBeLessThan(10_000);
    expect(await footprint()).toEqual(before);
  });

  it('answers a sample request 503 UNAVAILABLE and stores no sample rows', async () => {
    await db.prisma.personalization.update({ where: { id: existing }, data: { status: 'succeeded' } });
    const before = await footprint();
    const res = await server.inject({
      method: 'POST',
      url: `/v1/personalizations/${existing}/samples`,
      payload: { prompts: ['a photo of <asset0> on a beach'], seed: 1 },
      headers: { ...alice.auth, 'idempotency-key': 'samples-during-the-outage' },
    });
    expect(res.statusCode).toBe(503);
    expect((res.json() as { code: string }).code).toBe('UNAVAILABLE');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(await footprint()).toEqual(before);
  });

  it('serves GETs from Postgres and reports Redis down on /readyz', async () => {
    const got = await server.inject({ method: 'GET', url: `/v1/personalizations/${existing}`, headers: alice.auth });
    expect(got.statusCode).toBe(200);
    expect((got.json() as { id: string }).id).toBe(existing);
    // other errors still get their own answers from the app's error handler
    const missing = await server.inject({ method: 'GET', url: '/v1/personalizations/00000000-0000-4000-8000-000000000000', headers: alice.auth });
    expect(missing.statusCode).toBe(404);
    expect((missing.json() as { code: string }).code).toBe('NOT_FOUND');
    const ready = await server.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect((ready.json() as { checks: Record<string, string> }).checks['redis']).toBe('down');
  });

  it('logs the outage once, however many reconnects fail, and prints nothing of its own', async () => {
    // ioredis retries every 50 ms growing to 2 s: by 3 s a dozen attempts of each client have failed
    await new Promise((r) => setTimeout(r, 3000));
    expect(outageLines()).toHaveLength(1);
    expect(otherTrouble()).toEqual([]);
    expect(consoleError.mock.calls).toEqual([]);
    expect(consoleWarn.mock.calls).toEqual([]);
  });

  it('(Redis back) logs the recovery once, and the create retried with its key succeeds', async () => {
    await redis.start();
    await waitFor('the recovery line', () => recoveryLines().length > 0, 15_000);
    const res = await create('during-the-outage');
    expect(res.statusCode).toBe(202);
    const id = (res.json() as { id: string }).id;
    expect(await db.personalizations.findById(id)).toMatchObject({ status: 'queued' });
    const flow = await services.deps.queues
      .queues()
      .find((q) => q.name === 'augment')!
      .getJobCounts();
    expect(flow['waiting']! + flow['prioritized']! + flow['delayed']!).toBeGreaterThanOrEqual(1);
    // the other clients (queues, the webhook worker) reconnect too without a second outage or recovery line
    await new Promise((r) => setTimeout(r, 2500));
    expect(outageLines()).toHaveLength(1);
    expect(recoveryLines()).toHaveLength(1);
    expect(otherTrouble()).toEqual([]);
    expect(consoleError.mock.calls).toEqual([]);
  });
});
