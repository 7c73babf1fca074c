import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deliverOnce, deliverWithRetries, retryDelayMs } from './delivery.js';
import { notify } from './notify.js';
import { generateWebhookSecret, verifyWebhook } from './signing.js';
import { MemoryDeliveryStore } from './testing/memory-store.js';
import { startTestReceiver } from './testing/receiver.js';

async function setup(codes: number[]) {
  const r = await startTestReceiver(codes);
  const store = new MemoryDeliveryStore();
  const secret = generateWebhookSecret();
  store.secrets.set('t1', secret);
  const id = await notify(store, { tenantId: 't1', url: r.url, type: 'personalization.training.completed', data: { id: 'p1', status: 'sampling' } });
  return { ...r, store, secret, id: id! };
}

const fast = { allowPrivate: true, scheduleMs: [10, 20, 40], jitter: 0 };

describe('webhook delivery', () => {
  it('posts a signed JSON body that verifies with the tenant secret, once, with a stable webhook-id', async () => {
    const s = await setup([204]);
    try {
      const r = await deliverOnce(s.store, s.id, fast);
      expect(r).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(s.received).toHaveLength(1);
      const body = verifyWebhook(s.secret, s.received[0]!.headers as Record<string, string>, s.received[0]!.body) as { type: string; data: { id: string; status: string }; timestamp: string };
      expect(body).toMatchObject({ type: 'personalization.training.completed', data: { id: 'p1', status: 'sampling' } });
      expect(s.received[0]!.headers['webhook-id']).toBe(s.store.deliveries.get(s.id)!.eventId);
      expect(s.received[0]!.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(s.received[0]!.headers['content-type']).toBe('application/json');
      // a second run of the job (at-least-once delivery) does not post again
      expect(await deliverOnce(s.store, s.id, fast)).toMatchObject({ status: 'succeeded', attempt: 1 });
      expect(s.received).toHaveLength(1);
      // the same event raised twice is one delivery
      await notify(s.store, { tenantId: 't1', url: s.url, type: 'personalization.training.completed', data: { id: 'p1', status: 'sampling' } });
      expect(s.store.deliveries.size).toBe(1);
    } finally {
      s.close();
    }
  });

  it('retries after 500s with backoff, recording every attempt, and succeeds', async () => {
    const s = await setup([500, 503, 200]);
    try {
      const r = await deliverWithRetries(s.store, s.id, fast);
      expect(r).toMatchObject({ status: 'succeeded', attempt: 3 });
      expect(s.store.attempts.get(s.id)!.map((a) => [a.statusCode, a.status])).toEqual([[500, 'pending'], [503, 'pending'], [200, 'succeeded']]);
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
      expect(s.store.deliveries.get(s.id)!.status).toBe('failed');
      expect(s.store.attempts.get(s.id)!.at(-1)).toMatchObject({ statusCode: 500, error: 'HTTP 500', status: 'failed' });
    } finally {
      s.close();
    }
  });

  it('as a queue job: throws while pending so the queue retries, and gives up on the queue\'s last attempt', async () => {
    const s = await setup([500]);
    try {
      const { createDeliverJobHandler } = await import('./delivery.js');
      const handle = createDeliverJobHandler(s.store, { allowPrivate: true, scheduleMs: [10], jitter: 0 });
      // the schedule has one retry, but the queue has three attempts: they decide
      for (const attemptsMade of [0, 1]) await expect(handle({ deliveryId: s.id }, { attemptsMade, opts: { attempts: 3 } })).rejects.toThrow(/HTTP 500/);
      expect(s.store.deliveries.get(s.id)!.status).toBe('pending');
      expect(await handle({ deliveryId: s.id }, { attemptsMade: 2, opts: { attempts: 3 } })).toMatchObject({ status: 'failed', attempt: 3 });
      expect(s.received).toHaveLength(3);
    } finally {
      s.close();
    }
  });

  it('refuses loopback targets unless allowPrivate, recording the refusal as a failed attempt', async () => {
    const s = await setup([200]);
    try {
      const r = await deliverOnce(s.store, s.id, { ...fast, allowPrivate: false });
      expect(r.status).toBe('pending');
      expect(r.outcome?.error).toMatch(/127\.0\.0\.1.*private, loopback/);
      expect(s.received).toHaveLength(0);
      // a host name resolving to loopback is refused at connect time too
      const named = s.url.replace('127.0.0.1', 'localhost');
      const { postWebhook } = await import('./delivery.js');
      expect((await postWebhook(named, s.secret, 'm', '{}')).error).toMatch(/localhost resolves to .*loopback/);
      expect(s.received).toHaveLength(0);
    } finally {
      s.close();
    }
  });

  it('times out a receiver that never answers', async () => {
    const server = createServer(() => { /* hang */ });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const store = new MemoryDeliveryStore();
    store.secrets.set('t1', generateWebhookSecret());
    const id = (await notify(store, { tenantId: 't1', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, type: 'samples.completed', data: { id: 'p', status: 'succeeded' } }))!;
    try {
      const r = await deliverOnce(store, id, { ...fast, timeoutMs: 200 });
      expect(r.outcome?.error).toMatch(/within 200 ms/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('spreads retry delays with jitter around the schedule', () => {
    const d = [0, 0.5, 1].map((r) => retryDelayMs(1, { random: () => r }));
    expect(d).toEqual([4000, 5000, 6000]);
    expect(retryDelayMs(6)).toBeUndefined();
  });
});
