/**
 * Delivery through the Postgres store the service runs (deliveryStoreFrom, notifyPortsFrom over a scratch
 * database) to a loopback receiver: what is signed, what is recorded after each attempt, when it gives up.
 * `recording` only watches the store's recordAttempt calls (Postgres keeps the totals, not each attempt).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDb, createScratchDatabase, migrate, type Db, type ScratchDatabase } from '@dynasyn/db';
import { deliveryStoreFrom, notifyPortsFrom } from './db-store.js';
import { createDeliverJobHandler, deliverOnce, deliverWithRetries, postWebhook, type AttemptRecord, type DeliveryStore } from './delivery.js';
import { notify } from './notify.js';
import { verifyWebhook } from './signing.js';
import { startTestReceiver } from './testing/receiver.js';

let scratch: ScratchDatabase;
let db: Db;

beforeAll(async () => {
  scratch = await createScratchDatabase('postgresql://postgres@127.0.0.1:5432/postgres');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 4 });
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

/** The Postgres store, with every attempt it is asked to record kept in `attempts`. */
function recording(store: DeliveryStore) {
  const attempts: AttemptRecord[] = [];
  return {
    attempts,
    store: {
      ...store,
      recordAttempt: async (id: string, a: AttemptRecord) => {
        attempts.push(a);
        await store.recordAttempt(id, a);
      },
    },
  };
}

let tenants = 0;
async function setup(codes: number[], url?: string) {
  const receiver = await startTestReceiver(codes);
  const { tenant } = await db.tenants.create(`hooks-${++tenants}`);
  const enqueued: string[] = [];
  const ports = notifyPortsFrom(db, async (id) => {
    enqueued.push(id);
  });
  const event = {
    tenantId: tenant.id,
    url: url ?? receiver.url,
    type: 'personalization.training.completed' as const,
    data: { id: `p${tenants}`, status: 'sampling' },
  };
  const id = (await notify(ports, event))!;
  const { store, attempts } = recording(deliveryStoreFrom(db));
  return { ...receiver, tenant, ports, event, enqueued, store, attempts, id, secret: tenant.webhookSecret, row: async () => (await db.webhooks.get(id))! };
}

const fast = { allowCidrs: ['127.0.0.0/8'], scheduleMs: [10, 20, 40], jitter: 0 };

describe('webhook delivery', () => {
  it('posts a signed JSON body that verifies with the tenant secret, once, with a stable webhook-id', async () => {
    const s = await setup([204]);
    try {
      expect(s.enqueued).toEqual([s.id]);
      const r = await deliverOnce(s.store, s.id, fast);
      expect(r).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(s.received).toHaveLength(1);
      const body = verifyWebhook(s.secret, s.received[0]!.headers as Record<string, string>, s.received[0]!.body) as {
        type: string;
        data: { id: string; status: string };
      };
      expect(body).toMatchObject({ type: 'personalization.training.completed', data: s.event.data });
      const row = await s.row();
      expect(row).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 204, lastError: null, deliveredAt: expect.any(Date) });
      expect(s.received[0]!.headers['webhook-id']).toBe(row.eventId);
      expect(s.received[0]!.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(s.received[0]!.headers['content-type']).toBe('application/json');
      // a second run of the job (at-least-once delivery) does not post again
      expect(await deliverOnce(s.store, s.id, fast)).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(s.received).toHaveLength(1);
      // the same event raised twice is one delivery (enqueued again: the first run may have died before enqueueing)
      expect(await notify(s.ports, s.event)).toBe(s.id);
      expect(await db.webhooks.list(s.tenant.id)).toHaveLength(1);
      expect(s.enqueued).toEqual([s.id, s.id]);
    } finally {
      s.close();
    }
  });

  it('signs each attempt with the secret current at that attempt (a rotation applies to retries)', async () => {
    const s = await setup([500, 200]);
    try {
      await deliverOnce(s.store, s.id, fast);
      const rotated = await db.tenants.rotateWebhookSecret(s.tenant.id);
      expect((await deliverOnce(s.store, s.id, fast)).status).toBe('succeeded');
      const [first, second] = s.received;
      expect(() => verifyWebhook(rotated, first!.headers as Record<string, string>, first!.body)).toThrow();
      expect(verifyWebhook(rotated, second!.headers as Record<string, string>, second!.body)).toMatchObject({ data: s.event.data });
    } finally {
      s.close();
    }
  });

  it('retries after 500s with backoff, recording every attempt, and succeeds', async () => {
    const s = await setup([500, 503, 200]);
    try {
      const r = await deliverWithRetries(s.store, s.id, fast);
      expect(r).toMatchObject({ status: 'succeeded', attempt: 3 });
      expect(s.attempts.map((a) => [a.statusCode, a.status])).toEqual([
        [500, 'pending'],
        [503, 'pending'],
        [200, 'succeeded'],
      ]);
      expect(await s.row()).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200, nextAttemptAt: null });
      expect(new Set(s.received.map((g) => g.headers['webhook-id'])).size).toBe(1);
    } finally {
      s.close();
    }
  });

  it('gives up after the schedule is exhausted', async () => {
    const s = await setup([500]);
    try {
      const r = await deliverWithRetries(s.store, s.id, fast);
      expect(r).toMatchObject({ status: 'failed', attempt: 4 });
      expect(s.received).toHaveLength(4);
      expect(await s.row()).toMatchObject({ status: 'failed', attempts: 4, lastStatusCode: 500, lastError: 'HTTP 500', nextAttemptAt: null });
      expect(s.attempts.at(-1)).toMatchObject({ statusCode: 500, error: 'HTTP 500', status: 'failed' });
      // nothing is due any more: the sweeper leaves it alone
      expect((await db.webhooks.listDue(new Date(Date.now() + 3_600_000))).map((d) => d.id)).not.toContain(s.id);
    } finally {
      s.close();
    }
  });

  it("as a queue job: throws while pending so the queue retries, and gives up on the queue's last attempt", async () => {
    const s = await setup([500]);
    try {
      const handle = createDeliverJobHandler(s.store, { allowCidrs: ['127.0.0.0/8'], scheduleMs: [10], jitter: 0 });
      // the schedule has one retry, but the queue has three attempts: they decide
      for (const attemptsMade of [0, 1]) await expect(handle({ deliveryId: s.id }, { attemptsMade, opts: { attempts: 3 } })).rejects.toThrow(/HTTP 500/);
      expect(await s.row()).toMatchObject({ status: 'pending', attempts: 2, nextAttemptAt: expect.any(Date) });
      expect(await handle({ deliveryId: s.id }, { attemptsMade: 2, opts: { attempts: 3 } })).toMatchObject({ status: 'failed', attempt: 3 });
      expect(await s.row()).toMatchObject({ status: 'failed', attempts: 3 });
      expect(s.received).toHaveLength(3);
    } finally {
      s.close();
    }
  });

  it('refuses loopback targets unless allow-listed, recording the refusal as a failed attempt', async () => {
    const s = await setup([200]);
    try {
      const r = await deliverOnce(s.store, s.id, { ...fast, allowCidrs: [] });
      expect(r.status).toBe('pending');
      expect(r.outcome?.error).toMatch(/127\.0\.0\.1.*private, loopback/);
      expect(s.received).toHaveLength(0);
      expect(await s.row()).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: null, lastError: expect.stringMatching(/loopback/) });
      // a host name resolving to loopback is refused at connect time too
      const named = s.url.replace('127.0.0.1', 'localhost');
      expect((await postWebhook(named, s.secret, 'm', '{}')).error).toMatch(/localhost resolves to .*loopback/);
      expect(s.received).toHaveLength(0);
    } finally {
      s.close();
    }
  });

  it('times out a receiver that never answers, and records why', async () => {
    const server = createServer(() => {
      /* hang */
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const s = await setup([200], `http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    try {
      const r = await deliverOnce(s.store, s.id, { ...fast, timeoutMs: 200 });
      expect(r.outcome?.error).toMatch(/within 200 ms/);
      expect(await s.row()).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/within 200 ms/) });
    } finally {
      s.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('a delivery that does not exist is an error, not a silent success', async () => {
    await expect(deliverOnce(deliveryStoreFrom(db), '00000000-0000-0000-0000-000000000000', fast)).rejects.toMatchObject({ code: 'UNKNOWN_DELIVERY' });
  });
});
