/**
 * The reconciler's passes called directly, on the real Postgres (a fresh database) and a Redis this file starts on
 * its own port, with no worker process: losing Redis is a FLUSHALL of that Redis. A job lost again after every
 * recovery fails with RECOVERY_LIMIT and one `personalization.failed`; a cancel with no live job completes, one
 * with a worker holding the job is left to that worker; a lost sample request is put back once and rendered.
 */
import * as queue from '@dynasyn/queue';
import { redisServer, type RedisServer } from '../../queue/src/testing/redis-server.js';
import { waitFor } from '../../queue/src/testing/wait.js';
import { createAugmentHandler, createGsaHandler, createSampleHandler, createStageWorker, createTrainHandler, initialRequestId } from './handlers/index.js';
import { reconcileOnce, type ReconcileReport } from './reconciler.js';
import { createPgStageBed, type PgStageBed } from './testing/fixture.js';

const HOOK = 'https://hooks.example/x';
const SHORT = { augmentation: { count: 0 }, train: { phase1: { steps: 2 }, phase2: { steps: 2 }, checkpointEvery: 2 } };
const PREFIX = 'reconciler';

let bed: PgStageBed;
let redis: RedisServer;
let set: queue.QueueSet;
let admin: Awaited<ReturnType<typeof queue.connectRedis>>;

beforeAll(async () => {
  [bed, redis] = await Promise.all([createPgStageBed(), redisServer()]);
  set = queue.createQueues({ connection: queue.redisOptions(redis.url, 'producer'), prefix: PREFIX });
  admin = await queue.connectRedis(redis.url, 'producer');
});
afterAll(async () => {
  if (set) await queue.closeQueues(set);
  admin?.disconnect();
  await redis?.stop();
  await bed?.cleanup();
});

const row = async (id: string) => (await bed.db.personalizations.findById(id))!;
const events = async (id: string) => (await bed.db.webhooks.list(bed.tenantId, { personalizationId: id })).map((d) => d.eventType);
const pass = async (maxRecoveries?: number): Promise<ReconcileReport> => {
  // quiet for 0 ms: anything not live in Redis is lost (no worker runs here)
  const r = await reconcileOnce({ db: bed.db, set, deps: bed.deps }, { quietMs: 0, ...(maxRecoveries !== undefined ? { maxRecoveries } : {}) });
  if (!r) throw new Error('the reconciler lock was held by someone else');
  return r;
};
/** Passes until one reports `pick` (updatedAt has sub-millisecond precision: a pass in the same millisecond skips it). */
const passUntil = <T>(what: string, pick: (r: ReconcileReport) => T | undefined) =>
  waitFor(what, async () => pick(await pass()) ?? false, 10_000) as Promise<T>;

it('a job lost after each of its recoveries fails with RECOVERY_LIMIT and one personalization.failed', async () => {
  const id = await bed.addJob(SHORT, HOOK);
  for (let n = 1; n <= 3; n++) {
    const recovered = await passUntil(`recovery ${n}`, (r) => r.recovered.find((x) => x.id === id));
    expect(recovered).toEqual({ id, stage: 'augment', recoveries: n });
    // put back under the generation's ids and waiting: a pass leaves it alone
    expect(await set.queues.augment.getJobState(queue.personalizationJobId('augment', id, n))).toBe('waiting');
    expect((await pass()).recovered).toEqual([]);
    await admin.flushall();
  }
  const failed = await passUntil('the failure', (r) => (r.failed.includes(id) ? r : undefined));
  expect(failed.recovered).toEqual([]);
  expect(await row(id)).toMatchObject({ status: 'failed', recoveries: 3, error: { code: 'RECOVERY_LIMIT' } });
  expect(await set.queues.augment.getJobState(queue.personalizationJobId('augment', id, 4))).toBe('unknown');
  // a failed job is finished: later passes neither fail it again nor notify again
  expect(await pass()).toMatchObject({ failed: [], recovered: [] });
  expect(await events(id)).toEqual(['personalization.failed']);
});

it('a cancel of a job no worker runs completes; one a worker holds is left to that worker', async () => {
  const lost = await bed.addJob(SHORT, HOOK);
  const held = await bed.addJob(SHORT, HOOK);
  // held: its augment job run by a worker (locked, active) that polls for the cancel itself
  await queue.restorePersonalizationFlow(set.queues, set.flowProducer, { personalizationId: held, tenantId: bed.tenantId }, 'augment', 0);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const holder = queue.createWorker(
    queue.augmentCatalog,
    { 'personalization.augment': () => released },
    { connection: queue.redisOptions(redis.url, 'worker'), prefix: PREFIX, lockDuration: 60_000 },
  );
  try {
    await waitFor('the worker to hold the job', () => holder.activeJobs() === 1);
    for (const id of [lost, held]) {
      // past `queued` (a queued row is canceled by the API at once)
      await bed.db.personalizations.updateStatus(id, 'augmenting');
      await bed.db.personalizations.requestCancel(bed.tenantId, id);
    }
    const r = await pass();
    expect(r.canceled).toEqual([lost]);
    expect(r.recovered).toEqual([]);
    expect(await row(lost)).toMatchObject({ status: 'canceled', recoveries: 0 });
    expect(await row(held)).toMatchObject({ status: 'augmenting', recoveries: 0 });
    expect(await set.queues.augment.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 1 });
    expect(await events(lost)).toEqual([]);
  } finally {
    release();
    await holder.close();
  }
});

it('a lost sample request is put back once and its samples are rendered once', async () => {
  const id = await bed.addJob(SHORT, HOOK);
  for (const stage of [createAugmentHandler, createGsaHandler, createTrainHandler, createSampleHandler]) await stage(bed.deps)({ personalizationId: id });
  expect((await row(id)).status).toBe('succeeded');
  // a request the API stored and enqueued; Redis then lost the job
  const requestId = 'req-lost';
  const items = [0, 1].map((seed) => ({ prompt: 'a photo of <asset0>', seed, settings: { steps: 2 } }));
  const rows = await bed.db.samples.createMany(bed.tenantId, id, requestId, items);
  await admin.flushall();

  const put = await passUntil('the request put back', (r) => (r.requests.includes(requestId) ? r : undefined));
  expect(put.recovered).toEqual([]);
  const job = await set.queues.sample.getJob(`samples.generate-${requestId}-r1`);
  expect(job?.data).toMatchObject({ personalizationId: id, requestId, sampleIds: rows.map((s) => s.id) });
  expect((await bed.db.samples.listByRequest(requestId)).map((s) => s.recoveries)).toEqual([1, 1]);
  // waiting: not put back twice
  expect((await pass()).requests).toEqual([]);

  const worker = createStageWorker('sample', bed.deps, { connection: queue.redisOptions(redis.url, 'worker'), prefix: PREFIX, lockDuration: 30_000 });
  try {
    await waitFor('the request rendered', async () => (await job!.getState()) === 'completed', 90_000);
  } finally {
    await worker.close();
  }
  const done = await bed.db.samples.listByRequest(requestId);
  expect(done.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
  const keys = (await bed.db.artifacts.list(id)).map((a) => a.key).filter((k) => k.includes(`/requests/${requestId}/`));
  expect(keys.sort()).toEqual(done.map((s) => s.artifactKey).sort());
  expect((await events(id)).filter((e) => e === 'samples.completed')).toHaveLength(2); // the initial samples', and this request's
  expect((await pass()).requests).toEqual([]);
}, 240_000);

it('a sample request lost after each of its recoveries fails its rows with RECOVERY_LIMIT and ends with one samples.completed', async () => {
  // rows of a request whose personalization succeeded (the API refuses requests before that)
  const id = await bed.addJob(SHORT, HOOK);
  for (const to of ['augmenting', 'training', 'sampling', 'succeeded'] as const) await bed.db.personalizations.updateStatus(id, to);
  const requestId = 'req-lost-again';
  await bed.db.samples.createMany(bed.tenantId, id, requestId, [{ prompt: 'a photo of <asset0>', seed: 0, settings: {} }]);
  for (let n = 1; n <= 3; n++) {
    await admin.flushall();
    await passUntil(`recovery ${n}`, (r) => (r.requests.includes(requestId) ? r : undefined));
    expect(await set.queues.sample.getJobState(`samples.generate-${requestId}-r${n}`)).toBe('waiting');
  }
  await admin.flushall();
  const r = await passUntil('the request failed', (x) => (x.failedRequests.includes(requestId) ? x : undefined));
  expect(r.requests).toEqual([]);
  const rows = await bed.db.samples.listByRequest(requestId);
  expect(rows.map((s) => [s.status, (s.error as { code?: string } | null)?.code, s.recoveries])).toEqual([['failed', 'RECOVERY_LIMIT', 3]]);
  // the client hears the request ended, once
  expect((await pass()).failedRequests).toEqual([]);
  expect(await events(id)).toEqual(['samples.completed']);
  const [delivery] = await bed.db.webhooks.list(bed.tenantId, { personalizationId: id });
  expect(JSON.stringify(delivery!.payload)).toContain(requestId);
});

it("the initial samples' unfinished rows are left to the personalization's recovery, not put back as a request", async () => {
  // a sample stage killed after creating its rows and before finishing them, then Redis lost the chain
  const id = await bed.addJob(SHORT, HOOK);
  for (const to of ['augmenting', 'training', 'sampling'] as const) await bed.db.personalizations.updateStatus(id, to);
  await bed.db.samples.createMany(bed.tenantId, id, initialRequestId(id), [{ prompt: 'a photo of <asset0>', seed: 0, settings: {} }]);
  await admin.flushall();
  const r = await passUntil('the personalization recovered', (x) => (x.recovered.some((e) => e.id === id) ? x : undefined));
  expect(r.requests).toEqual([]);
  expect(await set.queues.sample.getJobCounts('waiting', 'delayed', 'prioritized')).toEqual({ waiting: 0, delayed: 0, prioritized: 0 });
  expect((await bed.db.samples.listByRequest(initialRequestId(id))).map((s) => [s.status, s.recoveries])).toEqual([['queued', 0]]);
});
