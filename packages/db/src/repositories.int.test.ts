import { createDb, type Db } from './client.js';
import { migrate } from './migrate.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch.js';
import { hashApiKey } from './repositories/tenants.js';

const ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

let scratch: ScratchDatabase;
let db: Db;

beforeAll(async () => {
  scratch = await createScratchDatabase(ADMIN_URL);
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 4 });
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

const subjects = [{ classWord: 'dog', maskKey: 'masks/0.png' }];
async function newJob(tenantId: string) {
  const result = await db.personalizations.create({ tenantId, subjects, imageKey: 'image.png', options: { preset: 'tiny' } });
  if (!result.created) throw new Error('expected a new row');
  return result.personalization;
}

describe('tenants', () => {
  test('the API key is returned once, stored only as its sha256, and finds its tenant', async () => {
    const { tenant, apiKey } = await db.tenants.create('acme');
    expect(apiKey).toMatch(/^dsk_[A-Za-z0-9_-]{32}$/);
    expect(tenant.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    const stored = await db.prisma.apiKey.findMany({ where: { tenantId: tenant.id } });
    expect(stored).toHaveLength(1);
    expect(stored[0]!.hash).toBe(hashApiKey(apiKey));
    expect(JSON.stringify(stored)).not.toContain(apiKey);
    expect(apiKey.startsWith(stored[0]!.prefix)).toBe(true);
    expect((await db.tenants.findByApiKey(apiKey))?.id).toBe(tenant.id);
    expect(await db.tenants.findByApiKey(`${apiKey}x`)).toBeNull();
    expect((await db.prisma.apiKey.findUniqueOrThrow({ where: { id: stored[0]!.id } })).lastUsedAt).toBeInstanceOf(Date);
  });

  test('a revoked key no longer authenticates; another tenant cannot revoke it', async () => {
    const a = await db.tenants.create('a');
    const b = await db.tenants.create('b');
    const { record, apiKey } = await db.tenants.createApiKey(a.tenant.id, 'ci');
    expect(await db.tenants.revokeApiKey(b.tenant.id, record.id)).toBe(false);
    expect((await db.tenants.findByApiKey(apiKey))?.id).toBe(a.tenant.id);
    expect(await db.tenants.revokeApiKey(a.tenant.id, record.id)).toBe(true);
    expect(await db.tenants.findByApiKey(apiKey)).toBeNull();
    expect((await db.tenants.findByApiKey(a.apiKey))?.id).toBe(a.tenant.id);
  });

  test('rotating the webhook secret replaces it', async () => {
    const { tenant } = await db.tenants.create('rotator');
    const next = await db.tenants.rotateWebhookSecret(tenant.id);
    expect(next).not.toBe(tenant.webhookSecret);
    expect((await db.tenants.get(tenant.id))?.webhookSecret).toBe(next);
  });
});

describe('personalizations', () => {
  test("another tenant's id reads as null and cannot be canceled or deleted", async () => {
    const owner = (await db.tenants.create('owner')).tenant;
    const other = (await db.tenants.create('other')).tenant;
    const job = await newJob(owner.id);
    expect((await db.personalizations.get(owner.id, job.id))?.id).toBe(job.id);
    expect(await db.personalizations.get(other.id, job.id)).toBeNull();
    expect(await db.personalizations.requestCancel(other.id, job.id)).toBeNull();
    expect(await db.personalizations.delete(other.id, job.id)).toBe(false);
    expect((await db.personalizations.list(other.id)).map((p) => p.id)).not.toContain(job.id);
    const still = await db.personalizations.get(owner.id, job.id);
    expect(still?.status).toBe('queued');
    expect(still?.cancelRequestedAt).toBeNull();
  });

  test('status moves forward (skips allowed), never back, and terminal states stick', async () => {
    const tenant = (await db.tenants.create('flow')).tenant;
    const job = await newJob(tenant.id);
    const move = (to: Parameters<Db['personalizations']['updateStatus']>[1], update?: Parameters<Db['personalizations']['updateStatus']>[2]) =>
      db.personalizations.updateStatus(job.id, to, update);
    expect((await move('training')).changed).toBe(true); // augmentation reused
    expect((await move('training')).changed).toBe(false); // a re-run stage
    expect((await move('augmenting')).changed).toBe(false);
    const sampling = await move('sampling');
    expect(sampling.personalization?.startedAt).toBeInstanceOf(Date);
    expect(sampling.personalization?.finishedAt).toBeNull();
    const done = await move('succeeded', { metrics: { clip: 0.3 } });
    expect(done.changed).toBe(true);
    expect(done.personalization).toMatchObject({ status: 'succeeded', metrics: { clip: 0.3 }, finishedAt: expect.any(Date) });
    for (const to of ['failed', 'canceled', 'training', 'queued'] as const) {
      const attempt = await move(to, { error: { code: 'LATE', message: 'too late' } });
      expect(attempt.changed).toBe(false);
      expect(attempt.personalization).toMatchObject({ status: 'succeeded', error: null });
    }
  });

  test('a failure records its error; concurrent terminal moves let exactly one win', async () => {
    const tenant = (await db.tenants.create('race')).tenant;
    const job = await newJob(tenant.id);
    await db.personalizations.updateStatus(job.id, 'training');
    const results = await Promise.all([
      db.personalizations.updateStatus(job.id, 'failed', { error: { code: 'OOM', message: 'out of memory' } }),
      db.personalizations.updateStatus(job.id, 'canceled'),
    ]);
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    const final = await db.personalizations.findById(job.id);
    expect(['failed', 'canceled']).toContain(final?.status);
    if (final?.status === 'failed') expect(final.error).toEqual({ code: 'OOM', message: 'out of memory' });
  });

  test('progress keeps one entry per stage, in the order reached', async () => {
    const tenant = (await db.tenants.create('progress')).tenant;
    const job = await newJob(tenant.id);
    await db.personalizations.setProgress(job.id, 'augment', 1, 4);
    await db.personalizations.setProgress(job.id, 'augment', 4, 4);
    await db.personalizations.setProgress(job.id, 'train', 10, 400);
    await db.personalizations.setProgress(job.id, 'augment', 4, 4);
    expect((await db.personalizations.findById(job.id))?.progress).toEqual([
      { stage: 'augment', step: 4, total: 4 },
      { stage: 'train', step: 10, total: 400 },
    ]);
  });

  test('cancel: a queued job is canceled at once, a running one is asked to stop', async () => {
    const tenant = (await db.tenants.create('cancel')).tenant;
    const queued = await newJob(tenant.id);
    expect(await db.personalizations.requestCancel(tenant.id, queued.id)).toMatchObject({ status: 'canceled', cancelRequestedAt: expect.any(Date) });
    const running = await newJob(tenant.id);
    await db.personalizations.updateStatus(running.id, 'training');
    expect(await db.personalizations.requestCancel(tenant.id, running.id)).toMatchObject({ status: 'training', cancelRequestedAt: expect.any(Date) });
  });

  test('delete removes artifacts, samples and deliveries with it', async () => {
    const tenant = (await db.tenants.create('cascade')).tenant;
    const keyed = await db.personalizations.create(
      { tenantId: tenant.id, subjects, imageKey: 'image.png', options: {} },
      { key: 'del', requestHash: 'h', response: (p) => ({ status: 202, body: { id: p.id } }) },
    );
    if (!keyed.created) throw new Error('expected a new row');
    const job = keyed.personalization;
    await db.artifacts.record({ personalizationId: job.id, kind: 'image', key: 'a', sha256: 'x', size: 1, contentType: 'image/png' });
    await db.samples.createMany(tenant.id, job.id, 'r1', [{ prompt: 'a dog', seed: 1, settings: {} }]);
    await db.webhooks.createDelivery({
      tenantId: tenant.id,
      personalizationId: job.id,
      eventType: 'e',
      eventId: `msg_${job.id}`,
      url: 'http://x',
      payload: {},
    });
    expect(await db.personalizations.delete(tenant.id, job.id)).toBe(true);
    expect(await db.prisma.artifact.count({ where: { personalizationId: job.id } })).toBe(0);
    expect(await db.prisma.sample.count({ where: { personalizationId: job.id } })).toBe(0);
    expect(await db.prisma.webhookDelivery.count({ where: { personalizationId: job.id } })).toBe(0);
    // The idempotency record outlives the row (a retry still gets the original answer).
    expect((await db.idempotency.find(tenant.id, 'del'))?.personalizationId).toBeNull();
  });
});

describe('artifacts, samples, webhooks', () => {
  test('recording the same artifact key twice keeps one row, updated', async () => {
    const tenant = (await db.tenants.create('artifacts')).tenant;
    const job = await newJob(tenant.id);
    const base = { personalizationId: job.id, kind: 'checkpoint' as const, key: 'ckpt/step-100.safetensors', contentType: 'application/octet-stream' };
    await db.artifacts.record({ ...base, sha256: 'a'.repeat(64), size: 10 });
    await Promise.all([
      db.artifacts.record({ ...base, sha256: 'b'.repeat(64), size: 3_000_000_000 }),
      db.artifacts.record({ ...base, sha256: 'b'.repeat(64), size: 3_000_000_000 }),
    ]);
    await db.artifacts.record({ ...base, kind: 'report', key: 'report.html', sha256: 'c'.repeat(64), size: 5 });
    const all = await db.artifacts.list(job.id);
    expect(all.map((a) => [a.key, a.size, a.sha256[0]])).toEqual([
      ['ckpt/step-100.safetensors', 3_000_000_000, 'b'],
      ['report.html', 5, 'c'],
    ]);
    expect((await db.artifacts.list(job.id, { kind: 'report' })).map((a) => a.key)).toEqual(['report.html']);
  });

  test('samples are created per request in order, listed per tenant and prompt, and updated', async () => {
    const tenant = (await db.tenants.create('samples')).tenant;
    const other = (await db.tenants.create('samples-other')).tenant;
    const job = await newJob(tenant.id);
    const made = await db.samples.createMany(tenant.id, job.id, 'req-1', [
      { prompt: 'a dog on the beach', seed: 1, settings: { steps: 4 } },
      { prompt: 'a dog in snow', seed: 2, settings: { steps: 4 } },
      { prompt: 'a dog on the beach', seed: 3, settings: { steps: 4 } },
    ]);
    expect(made.map((s) => s.seed)).toEqual([1, 2, 3]);
    expect((await db.samples.list(tenant.id, job.id, { prompt: 'a dog on the beach' })).map((s) => s.seed)).toEqual([1, 3]);
    expect(await db.samples.list(other.id, job.id)).toEqual([]);
    const done = await db.samples.update(made[0]!.id, { status: 'succeeded', artifactKey: 'samples/1.png', metrics: { clip: 0.2 } });
    expect(done).toMatchObject({ status: 'succeeded', artifactKey: 'samples/1.png', metrics: { clip: 0.2 } });
    expect((await db.samples.listByRequest('req-1')).map((s) => s.status)).toEqual(['succeeded', 'queued', 'queued']);
  });

  test("replacing a request's samples swaps its rows at once and leaves other requests alone", async () => {
    const tenant = (await db.tenants.create('replace')).tenant;
    const job = await newJob(tenant.id);
    const request = { tenantId: tenant.id, personalizationId: job.id, requestId: 'req-r' };
    await db.samples.createMany(tenant.id, job.id, 'req-r', [
      { prompt: 'a', seed: 1, settings: {} },
      { prompt: 'b', seed: 2, settings: {} },
    ]);
    await db.samples.createMany(tenant.id, job.id, 'req-keep', [{ prompt: 'k', seed: 9, settings: {} }]);
    const replaced = await db.samples.replaceRequest({
      ...request,
      items: [
        { prompt: 'c', seed: 3, settings: {} },
        { prompt: 'd', seed: 4, settings: {} },
        { prompt: 'e', seed: 5, settings: {} },
      ],
    });
    expect(replaced.map((s) => s.prompt)).toEqual(['c', 'd', 'e']);
    expect((await db.samples.listByRequest('req-r')).map((s) => s.prompt)).toEqual(['c', 'd', 'e']);
    expect((await db.samples.listByRequest('req-keep')).map((s) => s.prompt)).toEqual(['k']);
    // a failing insert (a personalization that does not exist) keeps the old rows: delete and insert are one transaction
    await expect(
      db.samples.replaceRequest({ ...request, personalizationId: '00000000-0000-0000-0000-000000000000', items: [{ prompt: 'x', seed: 0, settings: {} }] }),
    ).rejects.toThrow();
    expect((await db.samples.listByRequest('req-r')).map((s) => s.prompt)).toEqual(['c', 'd', 'e']);
  });

  test('a delivery is created once per event id, retried while due, and ends delivered or failed', async () => {
    const tenant = (await db.tenants.create('hooks')).tenant;
    const input = {
      tenantId: tenant.id,
      eventType: 'personalization.failed',
      eventId: `msg_${tenant.id}`,
      url: 'http://127.0.0.1:1/hook',
      payload: { type: 'x' },
    };
    const d = await db.webhooks.createDelivery(input);
    expect((await db.webhooks.createDelivery(input)).id).toBe(d.id);
    const now = new Date();
    expect((await db.webhooks.listDue(now)).map((x) => x.id)).toContain(d.id);
    const later = new Date(now.getTime() + 60_000);
    const retry = await db.webhooks.markAttempt(d.id, { ok: false, statusCode: 503, nextAttemptAt: later });
    expect(retry).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 503, lastError: 'HTTP 503' });
    expect((await db.webhooks.listDue(now)).map((x) => x.id)).not.toContain(d.id);
    expect((await db.webhooks.listDue(later)).map((x) => x.id)).toContain(d.id);
    const delivered = await db.webhooks.markAttempt(d.id, { ok: true, statusCode: 204 });
    expect(delivered).toMatchObject({ status: 'delivered', attempts: 2, lastError: null, deliveredAt: expect.any(Date), nextAttemptAt: null });
    const e = await db.webhooks.createDelivery({ ...input, eventId: `${input.eventId}-2` });
    expect(await db.webhooks.markAttempt(e.id, { ok: false, error: 'ECONNREFUSED' })).toMatchObject({ status: 'failed', lastError: 'ECONNREFUSED' });
    expect((await db.webhooks.list(tenant.id)).map((x) => x.status).sort()).toEqual(['delivered', 'failed']);
    // abandon: only a pending delivery, which leaves the due list with its reason
    const f = await db.webhooks.createDelivery({ ...input, eventId: `${input.eventId}-3` });
    expect(await db.webhooks.abandon(f.id, 'gave up after 8 attempts')).toBe(true);
    expect(await db.webhooks.get(f.id)).toMatchObject({ status: 'failed', lastError: 'gave up after 8 attempts', nextAttemptAt: null });
    expect((await db.webhooks.listDue(later)).map((x) => x.id)).not.toContain(f.id);
    expect(await db.webhooks.abandon(d.id, 'too late')).toBe(false);
    expect((await db.webhooks.get(d.id))!.status).toBe('delivered');
  });

  test('ping answers while Postgres does, and throws where nothing listens', async () => {
    await expect(db.ping()).resolves.toBeUndefined();
    const nowhere = createDb('postgresql://postgres@127.0.0.1:1/none', { maxConnections: 1 });
    try {
      await expect(nowhere.ping()).rejects.toThrow();
    } finally {
      await nowhere.close();
    }
  });

  test('bundles are registered once per fingerprint', async () => {
    const a = await db.bundles.ensure({ name: 'tiny', uri: '/b/tiny', fingerprint: 'fp-1', randomWeights: true });
    const b = await db.bundles.ensure({ name: 'tiny', uri: 's3://b/tiny', fingerprint: 'fp-1', randomWeights: true });
    expect(b.id).toBe(a.id);
    expect((await db.bundles.get(a.id))?.uri).toBe('s3://b/tiny');
  });
});
