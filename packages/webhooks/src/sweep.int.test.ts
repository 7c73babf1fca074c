/**
 * The sweeper against the real Postgres (a scratch database) and Redis (a random key prefix), with a loopback
 * receiver: a delivery whose queue job was lost is delivered all the same, signed; a live job is left alone; a
 * job that finished while Postgres still says pending is replaced; the attempts already made count; a delivery
 * with none left is given up.
 */
import { createDb, createScratchDatabase, migrate, type Db, type ScratchDatabase } from '@dynasyn/db';
import { closeQueues, createQueues, createWorker, enqueue, webhooksCatalog, type QueueSet, type QueueWorker } from '@dynasyn/queue';
import { Redis } from 'ioredis';
import { deletePrefix, randomPrefix, testRedisOptions, waitFor } from '../../queue/src/testing/redis.js';
import { verifyWebhook } from './signing.js';
import { startTestReceiver, type TestReceiver } from './testing/receiver.js';
import { startWebhookWorker, sweepLostDeliveries } from './sweep.js';

let scratch: ScratchDatabase;
let db: Db;
let redis: Redis;
let set: QueueSet;
let receiver: TestReceiver;
let url: string;
let tenantId: string;
const prefix = randomPrefix('sweep');

beforeAll(async () => {
  scratch = await createScratchDatabase('postgresql://postgres@127.0.0.1:5432/postgres');
  await migrate(scratch.url);
  db = createDb(scratch.url);
  tenantId = (await db.tenants.create('sweep')).tenant.id;
  redis = new Redis(testRedisOptions);
  set = createQueues({ connection: testRedisOptions, prefix });
  receiver = await startTestReceiver();
  url = receiver.url;
});
afterAll(async () => {
  receiver?.close();
  await closeQueues(set);
  await deletePrefix(redis, prefix);
  redis.disconnect();
  await db?.close();
  await scratch?.drop();
});

let n = 0;
/** A pending delivery due a minute ago (as if its first attempt had been scheduled then), with no queue job. */
const pending = async (target = url) =>
  db.webhooks.createDelivery({
    tenantId,
    eventType: 'personalization.training.completed',
    eventId: `msg_sweep_${++n}`,
    url: target,
    payload: { type: 'personalization.training.completed', data: { id: `p${n}`, status: 'training' } },
    nextAttemptAt: new Date(Date.now() - 60_000),
  });
const jobOf = (id: string) => set.queues.webhooks.getJob(webhooksCatalog.jobs['webhook.deliver'].jobId({ v: 1, deliveryId: id }));

it('a live job is left alone; a missing one is enqueued again with the attempts left; none left: given up', async () => {
  const live = await pending();
  await enqueue(set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId: live.id }, { delay: 600_000 });
  const lost = await pending();
  await db.webhooks.markAttempt(lost.id, { ok: false, statusCode: 503, nextAttemptAt: new Date(Date.now() - 30_000) });
  await db.webhooks.markAttempt(lost.id, { ok: false, statusCode: 503, nextAttemptAt: new Date(Date.now() - 30_000) });
  const spent = await pending();
  for (let i = 0; i < 8; i++) await db.webhooks.markAttempt(spent.id, { ok: false, statusCode: 500, nextAttemptAt: new Date(Date.now() - 30_000) });
  const recent = await db.webhooks.createDelivery({ tenantId, eventType: 'personalization.failed', eventId: `msg_sweep_${++n}`, url, payload: { type: 'x' } });

  const r = await sweepLostDeliveries(db, set.queues, { graceMs: 10_000 });
  expect(r.requeued).toEqual([lost.id]);
  expect(r.abandoned).toEqual([spent.id]);
  expect(r.requeued).not.toContain(recent.id); // due for less than the grace period: its job may be on its way
  expect(await (await jobOf(live.id))!.getState()).toBe('delayed');
  const again = (await jobOf(lost.id))!;
  expect(await again.getState()).toBe('waiting');
  expect(again.opts.attempts).toBe(6); // 8 in all, 2 made
  expect(await db.webhooks.get(spent.id)).toMatchObject({ status: 'failed', lastError: 'gave up after 8 attempts (last: HTTP 500)' });
  // a second sweep finds the requeued job live: nothing more
  expect((await sweepLostDeliveries(db, set.queues, { graceMs: 10_000 })).requeued).toEqual([]);
  // leave nothing due behind for the next test's sweeps
  await set.queues.webhooks.obliterate({ force: true });
  for (const d of [live, lost, recent]) await db.webhooks.abandon(d.id, 'test over');
});

it('the webhooks worker delivers a lost delivery through its scheduled sweep, signed with the tenant secret', async () => {
  const lost = await pending();
  // one whose job finished although Postgres still says pending (a worker killed between the POST and the record)
  const finished = await pending();
  await enqueue(set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId: finished.id });
  const noop: QueueWorker = createWorker(
    webhooksCatalog,
    { 'webhook.deliver': async () => undefined, 'webhook.sweep': async () => undefined },
    { connection: testRedisOptions, prefix },
  );
  await waitFor('the no-op worker to finish the job', async () => (await (await jobOf(finished.id))!.getState()) === 'completed');
  await noop.close();

  const worker = await startWebhookWorker(db, set, testRedisOptions, { allowCidrs: ['127.0.0.0/8'], sweepEveryMs: 300, sweep: { graceMs: 0 } });
  try {
    await waitFor(
      'both deliveries to be delivered',
      async () => {
        const rows = await Promise.all([db.webhooks.get(lost.id), db.webhooks.get(finished.id)]);
        return rows.every((d) => d!.status === 'delivered');
      },
      20_000,
    );
  } finally {
    await worker.close();
  }
  const secret = (await db.tenants.get(tenantId))!.webhookSecret;
  const ids = receiver.received.map((r) => {
    verifyWebhook(secret, r.headers as Record<string, string>, r.body);
    return r.headers['webhook-id'];
  });
  expect(ids.sort()).toEqual([lost.eventId, finished.eventId].sort());
  expect(await db.webhooks.get(lost.id)).toMatchObject({ attempts: 1, lastStatusCode: 200 });
  // one sweep schedule, however many workers registered it
  expect(await set.queues.webhooks.getJobSchedulers()).toHaveLength(1);
});
