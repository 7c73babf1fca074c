import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTenant, file, METRICS_TOKEN, multipart, OPS_TOKEN, pngImage, pngMask, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
let alice: Awaited<ReturnType<typeof createTenant>>;
let bob: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  h = await startHarness();
  alice = await createTenant(h.db, 'alice');
  bob = await createTenant(h.db, 'bob');
});
afterAll(async () => h?.close());

async function createPersonalization(): Promise<string> {
  const body = multipart([file('image', await pngImage(16, 16)), file('mask', await pngMask(16, 16)), { name: 'classes', value: 'ball' }]);
  const res = await h.server.inject({ method: 'POST', url: '/v1/personalizations', payload: body.payload, headers: { ...body.headers, ...alice.auth } });
  expect(res.statusCode).toBe(202);
  return (res.json() as { id: string }).id;
}

const samples = (id: string, payload: object, headers: Record<string, string> = alice.auth) =>
  h.server.inject({ method: 'POST', url: `/v1/personalizations/${id}/samples`, payload, headers });

describe('samples', () => {
  it('refuses samples until the personalization has succeeded (409), then enqueues samples.generate', async () => {
    const id = await createPersonalization();
    const early = await samples(id, { prompts: ['a photo of the ball on a beach'] });
    expect(early.statusCode).toBe(409);
    expect(early.json()).toMatchObject({ code: 'NOT_SUCCEEDED' });

    await h.db.personalizations.updateStatus(id, 'succeeded');
    const res = await samples(id, { prompts: ['on a beach', 'in snow'], seeds: [1, 2], steps: 20, guidance: 7.5 });
    expect(res.statusCode).toBe(202);
    const { items, requestId } = res.json() as { requestId: string; items: { id: string; prompt: string; seed: number; status: string; url: string | null }[] };
    expect(items.map((i) => [i.prompt, i.seed, i.status, i.url])).toEqual([
      ['on a beach', 1, 'queued', null],
      ['on a beach', 2, 'queued', null],
      ['in snow', 1, 'queued', null],
      ['in snow', 2, 'queued', null],
    ]);
    const jobs = await h.queues.queues.sample.getJobs(['waiting']);
    const job = jobs.find((j) => j.name === 'samples.generate');
    // the request id the worker's samples.completed event carries
    expect(job?.data).toMatchObject({ v: 1, personalizationId: id, tenantId: alice.id, requestId, sampleIds: items.map((i) => i.id) });
  });

  it('validates the request body with clear codes', async () => {
    const id = await createPersonalization();
    await h.db.personalizations.updateStatus(id, 'succeeded');
    for (const [body, code] of [
      [{}, 'VALIDATION_ERROR'],
      [{ prompts: [] }, 'VALIDATION_ERROR'],
      [{ prompts: ['x'], steps: 0 }, 'VALIDATION_ERROR'],
      [{ prompts: ['x'], extra: 1 }, 'VALIDATION_ERROR'],
      [{ prompts: ['x'], seed: 1, seeds: [2] }, 'VALIDATION_ERROR'],
      [{ prompts: Array.from({ length: 20 }, (_, i) => `p${i}`), seeds: [1, 2, 3, 4] }, 'VALIDATION_ERROR'],
      [{ prompts: Array.from({ length: 65 }, (_, i) => `p${i}`) }, 'VALIDATION_ERROR'],
    ] as const) {
      const res = await samples(id, body);
      expect({ body, status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ body, status: 400, code });
    }
    expect(await h.db.samples.list(alice.id, id)).toHaveLength(0);
  });

  it('lists samples by personalization and prompt, each with a URL that fetches the image for its tenant only', async () => {
    const id = await createPersonalization();
    await h.db.personalizations.updateStatus(id, 'succeeded');
    const res = await samples(id, { prompts: ['on a beach', 'in snow'], seed: 7 }, { ...alice.auth, 'idempotency-key': 'samples-1' });
    const again = await samples(id, { prompts: ['on a beach', 'in snow'], seed: 7 }, { ...alice.auth, 'idempotency-key': 'samples-1' });
    expect(again.json()).toEqual(res.json());
    expect(await h.db.samples.list(alice.id, id)).toHaveLength(2);

    const [beach] = (res.json() as { items: { id: string }[] }).items;
    const key = `tenants/${alice.id}/personalizations/${id}/samples/${beach!.id}.png`;
    const png = await pngImage(8, 8);
    await h.storage.put(key, png, { contentType: 'image/png' });
    await h.db.samples.update(beach!.id, { status: 'succeeded', artifactKey: key, metrics: { clipT: 0.31 } });

    const list = await h.server.inject({ method: 'GET', url: `/v1/samples?personalization=${id}&prompt=on%20a%20beach`, headers: alice.auth });
    expect(list.statusCode).toBe(200);
    const items = (list.json() as { items: { prompt: string; seed: number; url: string; status: string; metrics?: object }[] }).items;
    expect(items).toEqual([expect.objectContaining({ prompt: 'on a beach', seed: 7, status: 'succeeded', metrics: { clipT: 0.31 } })]);
    const url = items[0]!.url;
    expect(url).toBe(`/v1/files/${key}`);

    const image = await h.server.inject({ method: 'GET', url, headers: alice.auth });
    expect(image.statusCode).toBe(200);
    expect(image.headers['content-type']).toBe('image/png');
    expect(image.rawPayload.equals(Buffer.from(png))).toBe(true);
    expect((await h.server.inject({ method: 'GET', url, headers: bob.auth })).statusCode).toBe(404);
    expect((await h.server.inject({ method: 'GET', url })).statusCode).toBe(401);

    const all = await h.server.inject({ method: 'GET', url: `/v1/samples?personalization=${id}`, headers: alice.auth });
    expect((all.json() as { items: unknown[] }).items).toHaveLength(2);
  });

  it('lets one of concurrent sample requests with the same Idempotency-Key create the samples and one job; the others replay its answer', async () => {
    const id = await createPersonalization();
    await h.db.personalizations.updateStatus(id, 'succeeded');
    const key = { ...alice.auth, 'idempotency-key': 'samples-race' };
    const answers = await Promise.all(Array.from({ length: 4 }, () => samples(id, { prompts: ['in a garden'], seeds: [3, 4] }, key)));
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202, 202, 202]);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(3);
    expect(await h.db.samples.list(alice.id, id)).toHaveLength(2);
    const { requestId } = answers[0]!.json() as { requestId: string };
    const jobs = (await h.queues.queues.sample.getJobs(['waiting'])).filter((j) => j.data.personalizationId === id);
    expect(jobs.map((j) => j.data.requestId)).toEqual([requestId]);
  });
});

describe('webhooks', () => {
  it('shows the signing secret, rotates it, and lists deliveries with attempts and response codes', async () => {
    const secret = await h.server.inject({ method: 'GET', url: '/v1/webhooks/secret', headers: alice.auth });
    expect(secret.statusCode).toBe(200);
    const first = (secret.json() as { secret: string }).secret;
    expect(first).toMatch(/^whsec_[A-Za-z0-9+/=]{16,}$/);
    const bobs = (await h.server.inject({ method: 'GET', url: '/v1/webhooks/secret', headers: bob.auth })).json() as { secret: string };
    expect(bobs.secret).not.toBe(first);

    const rotated = await h.server.inject({ method: 'POST', url: '/v1/webhooks/secret/rotate', headers: alice.auth });
    const second = (rotated.json() as { secret: string }).secret;
    expect(second).toMatch(/^whsec_/);
    expect(second).not.toBe(first);
    expect(((await h.server.inject({ method: 'GET', url: '/v1/webhooks/secret', headers: alice.auth })).json() as { secret: string }).secret).toBe(second);

    const delivery = await h.db.webhooks.createDelivery({
      tenantId: alice.id,
      eventType: 'personalization.failed',
      eventId: 'msg_1',
      url: 'https://example.com/hook',
      payload: {},
    });
    for (const retry of [true, true, false]) {
      await h.db.webhooks.markAttempt(delivery.id, { ok: false, statusCode: 503, ...(retry ? { nextAttemptAt: new Date() } : {}) });
    }
    const deliveries = await h.server.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: alice.auth });
    expect((deliveries.json() as { items: unknown[] }).items).toEqual([
      expect.objectContaining({ eventType: 'personalization.failed', status: 'failed', attempts: 3, lastStatusCode: 503 }),
    ]);
    expect(((await h.server.inject({ method: 'GET', url: '/v1/webhooks/deliveries', headers: bob.auth })).json() as { items: unknown[] }).items).toEqual([]);
  });
});

describe('health, metrics, docs and ops', () => {
  it('answers /healthz and /readyz with every dependency checked', async () => {
    expect((await h.server.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await h.server.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { db: 'ok', redis: 'ok', storage: 'ok' } });
  });

  it('reports not ready (503) when a dependency is down', async () => {
    const down = h.serverWith({});
    const probes = h.deps.readiness;
    h.deps.readiness = { ...probes, redis: async () => Promise.reject(new Error('ECONNREFUSED')) };
    try {
      const res = await down.inject('/readyz');
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not ready', checks: { redis: 'down', db: 'ok' } });
    } finally {
      h.deps.readiness = probes;
    }
  });

  it('exposes Prometheus metrics: HTTP histograms by route and queue gauges', async () => {
    await h.server.inject('/healthz');
    const res = await h.server.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/healthz"/);
    expect(res.body).toMatch(/dynasyn_queue_jobs\{queue="augment",state="waiting"\} \d+/);
    expect(res.body).toMatch(/dynasyn_queue_oldest_waiting_seconds\{queue="train"\}/);
  });

  it('serves the OpenAPI document at /docs with the contract routes', async () => {
    const res = await h.server.inject('/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { paths: Record<string, Record<string, unknown>> };
    for (const path of ['/v1/personalizations', '/v1/personalizations/{id}', '/v1/personalizations/{id}/samples', '/v1/samples', '/v1/webhooks/secret']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(Object.keys(doc.paths['/v1/personalizations']!)).toContain('post');
  });

  it('gives code generators what they need: an operationId, 401 and 429 on every /v1 operation, named schemas', async () => {
    const doc = (await h.server.inject('/docs/json')).json() as {
      paths: Record<
        string,
        Record<string, { operationId?: string; parameters?: unknown[]; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>
      >;
      components: { schemas: Record<string, unknown> };
    };
    const ids: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, op] of Object.entries(ops)) {
        if (method === 'head') continue;
        expect([method, path, typeof op.operationId]).toEqual([method, path, 'string']);
        ids.push(op.operationId!);
        for (const code of ['401', '429', ...(op.parameters?.length && !path.includes('{*}') ? ['400'] : [])]) {
          // a wildcard path is not validated
          expect([method, path, code, op.responses[code]?.content?.['application/json']?.schema.$ref]).toEqual([
            method,
            path,
            code,
            '#/components/schemas/Error',
          ]);
        }
      }
    }
    expect(ids.length).toBeGreaterThanOrEqual(12);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Object.keys(doc.components.schemas)).toContain('Error');
  });

  it('keeps /ops closed without the operator token, open with it, and absent when no token is configured', async () => {
    expect((await h.server.inject('/ops')).statusCode).toBe(401);
    expect((await h.server.inject({ url: '/ops', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode).toBe(401);
    expect((await h.server.inject({ url: '/ops', headers: alice.auth })).statusCode).toBe(401);
    expect((await h.server.inject('/ops/queues')).statusCode).toBe(401);

    const page = await h.server.inject({ url: '/ops', headers: { authorization: `Bearer ${OPS_TOKEN}` } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    for (const q of ['augment', 'gsa', 'train', 'sample', 'webhooks']) expect(page.body).toContain(`<td>${q}</td>`);
    expect(page.body).toContain('oldest waiting');

    const login = await h.server.inject(`/ops?token=${OPS_TOKEN}`);
    expect(login.statusCode).toBe(303);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    expect((await h.server.inject({ url: '/ops/health.json', headers: { cookie } })).statusCode).toBe(200);
    const board = await h.server.inject({ url: '/ops/queues', headers: { cookie } });
    expect(board.statusCode).toBe(200);
    expect(board.body).toContain('<html');

    const closed = h.serverWith({ opsToken: undefined });
    expect((await closed.inject({ url: '/ops', headers: { authorization: `Bearer ${OPS_TOKEN}` } })).statusCode).toBe(404);
  });
});

describe('rate limits', () => {
  it('limits requests per API key in Redis with 429 RATE_LIMITED, other keys unaffected', async () => {
    const limited = h.serverWith({ rateLimitMax: 3, rateLimitWindowMs: 60_000 });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await limited.inject({ url: '/v1/webhooks/secret', headers: alice.auth })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const refused = await limited.inject({ url: '/v1/webhooks/secret', headers: alice.auth });
    expect(refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await limited.inject({ url: '/v1/webhooks/secret', headers: bob.auth })).statusCode).toBe(200);
    expect((await h.redis.keys(`${h.prefix}-rl-*`)).length).toBeGreaterThan(0);
  });
});

describe('errors', () => {
  it('answers unknown routes with {code, message} and never leaks 5xx details', async () => {
    expect((await h.server.inject('/nope')).json()).toMatchObject({ code: 'NOT_FOUND' });
    const broken = h.serverWith({});
    const get = h.deps.db.webhooks.listDeliveries;
    h.deps.db.webhooks.listDeliveries = async () => {
      throw new Error('relation "secret_table" does not exist at 10.0.0.5');
    };
    try {
      const res = await broken.inject({ url: '/v1/webhooks/deliveries', headers: alice.auth });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ code: 'INTERNAL', message: expect.any(String) });
      expect(res.body).not.toContain('secret_table');
    } finally {
      h.deps.db.webhooks.listDeliveries = get;
    }
  });
});
