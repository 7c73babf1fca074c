import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createDb, createScratchDatabase, type ScratchDatabase } from '@dynasyn/db';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { createQueues, closeQueues, enqueue } from '@dynasyn/queue';
import { createBlobStore } from '@dynasyn/storage';
import { verifyWebhook } from '@dynasyn/webhooks';
import { startS3rver, type RunningS3rver } from '../../../packages/storage/src/testing/s3rver.js';
import { startTestReceiver } from '../../../packages/webhooks/src/testing/receiver.js';
import { file, multipart, pngImage, pngMask } from './bench/upload-fixtures.js';
import { parseEnv } from './env.js';
import { startApi } from './index.js';
import { ADMIN_DATABASE_URL, REDIS_URL } from './testing/harness.js';

// The process wiring end to end: environment -> migrations -> services -> listening server, on S3 (s3rver).
let s3: RunningS3rver;
let scratch: ScratchDatabase;
let server: FastifyInstance;
let base: string;
const prefix = `test-api-svc-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  s3 = await startS3rver();
  scratch = await createScratchDatabase(ADMIN_DATABASE_URL, 'dynasyn_api_test');
  const env = parseEnv({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: scratch.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    STORAGE_URL: `s3://${s3.bucket}/dynasyn`,
    S3_ENDPOINT: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    LOG_LEVEL: 'silent',
    WEBHOOK_ALLOW_PRIVATE: 'true',
  });
  server = await startApi(env, { migrate: true, handleSignals: false });
  base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await server?.close();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await scratch?.drop();
  await s3?.stop();
});

it('starts from the environment (migrations applied), is ready, and links artifacts with presigned S3 URLs', async () => {
  expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready', checks: { db: 'ok', redis: 'ok', storage: 'ok' } });

  const db = createDb(scratch.url);
  try {
    const { tenant, apiKey } = await db.tenants.create('s3 tenant');
    const auth = { authorization: `Bearer ${apiKey}` };
    const image = await pngImage(16, 16);
    const body = multipart([file('image', image), file('mask', await pngMask(16, 16)), { name: 'classes', value: 'ball' }]);
    const created = await fetch(`${base}/v1/personalizations`, { method: 'POST', headers: { ...body.headers, ...auth }, body: body.payload });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };

    const row = (await db.personalizations.findById(id))!;
    expect(row.imageKey).toBe(`tenants/${tenant.id}/personalizations/${id}/input/image.png`);
    await db.artifacts.record({
      personalizationId: id,
      kind: 'image',
      key: row.imageKey,
      size: image.length,
      sha256: createHash('sha256').update(image).digest('hex'),
      contentType: 'image/png',
    });

    const got = (await (await fetch(`${base}/v1/personalizations/${id}`, { headers: auth })).json()) as { artifacts: { kind: string; url: string }[] };
    const url = got.artifacts[0]!.url;
    expect(url.startsWith(`${s3.endpoint}/${s3.bucket}/dynasyn/tenants/${tenant.id}/`)).toBe(true);
    expect(url).toContain('X-Amz-Signature=');
    const fetched = await fetch(url);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(Buffer.from(image))).toBe(true);
  } finally {
    await db.close();
  }
});

it('delivers webhooks from the API process: a queued delivery reaches the receiver signed with the tenant secret', async () => {
  const receiver = await startTestReceiver([204]);
  const { received } = receiver;
  const db = createDb(scratch.url);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const set = createQueues({ connection: redis, prefix });
  try {
    const { tenant } = await db.tenants.create('webhook tenant');
    const { url } = receiver;
    const delivery = await db.webhooks.createDelivery({
      tenantId: tenant.id,
      eventType: 'personalization.training.completed',
      eventId: `msg_${randomBytes(8).toString('hex')}`,
      url,
      payload: { type: 'personalization.training.completed', data: { id: 'p1', status: 'sampling' } },
    });
    await enqueue(set.queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId: delivery.id });
    const deadline = Date.now() + 20_000;
    while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(1);
    const payload = verifyWebhook(tenant.webhookSecret, received[0]!.headers as Record<string, string>, received[0]!.body) as { type: string };
    expect(payload.type).toBe('personalization.training.completed');
    let status = '';
    while (status !== 'delivered' && Date.now() < deadline) {
      status = (await db.webhooks.get(delivery.id))?.status ?? '';
      if (status !== 'delivered') await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('delivered');
  } finally {
    await closeQueues(set);
    redis.disconnect();
    await db.close();
    receiver.close();
  }
});

it('JSON create from uploads PUT straight to S3 through presigned URLs (s3rver does not check signatures)', async () => {
  const db = createDb(scratch.url);
  try {
    const { tenant, apiKey } = await db.tenants.create('s3 upload tenant');
    const auth = { authorization: `Bearer ${apiKey}` };
    const image = await pngImage(16, 16),
      mask = await pngMask(16, 16);
    const ids: string[] = [];
    for (const bytes of [image, mask]) {
      const u = (await (await fetch(`${base}/v1/uploads`, { method: 'POST', headers: auth })).json()) as { id: string; url: string; method: string };
      expect(u.url.startsWith(`${s3.endpoint}/${s3.bucket}/dynasyn/uploads/${tenant.id}/${u.id}`)).toBe(true);
      expect(u.url).toContain('X-Amz-Signature=');
      // a plain PUT with no API key, as a browser or mobile client would do
      expect((await fetch(u.url, { method: u.method, body: bytes, headers: { 'content-type': 'image/png' } })).status).toBe(200);
      ids.push(u.id);
    }
    const created = await fetch(`${base}/v1/personalizations`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ image: ids[0], masks: [ids[1]], classes: ['ball'], options: { preset: 'tiny' } }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    const row = (await db.personalizations.findById(id))!;
    expect(row.imageKey).toBe(`tenants/${tenant.id}/personalizations/${id}/input/image.png`);
    const storage = createBlobStore(`s3://${s3.bucket}/dynasyn`, { s3: s3.s3 });
    expect((await storage.get(row.imageKey)).equals(Buffer.from(image))).toBe(true);
    expect(await storage.list(`uploads/${tenant.id}`)).toEqual([]);
  } finally {
    await db.close();
  }
});
