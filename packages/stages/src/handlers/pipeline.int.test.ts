/**
 * The four stages in flow order on the tiny bundle with the tiny preset, on a fresh Postgres database and a
 * local BlobStore: statuses, progress, artifacts (recorded once although every stage runs twice), Sample rows,
 * and the webhooks delivered to a loopback receiver, signed with the tenant's secret.
 */
import { deliverOnce, deliveryStoreFrom, verifyWebhook } from '@dynasyn/webhooks';
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { startTestReceiver, type TestReceiver } from '../../../webhooks/src/testing/receiver.js';
import { createAugmentHandler } from './augment.js';
import { createGsaHandler } from './gsa.js';
import { createTrainHandler } from './train.js';
import { createGenerateHandler, createSampleHandler, initialRequestId } from './sample.js';

let bed: PgStageBed;
let receiver: TestReceiver;
let hookUrl: string;

beforeAll(async () => {
  bed = await createPgStageBed();
  receiver = await startTestReceiver();
  hookUrl = receiver.url;
});
afterAll(async () => {
  receiver?.close();
  await bed?.cleanup();
});

/** Runs the enqueued webhook.deliver jobs once each (what the webhooks worker does). */
async function deliverAll(): Promise<void> {
  const store = deliveryStoreFrom(bed.db);
  for (const id of bed.enqueued.splice(0)) await deliverOnce(store, id, { allowPrivate: true });
}

it('runs augment -> gsa -> train -> sample on Postgres, each stage safe to run twice', async () => {
  const { deps, db } = bed;
  const id = await bed.addJob({}, hookUrl);
  const stages = [createAugmentHandler(deps), createGsaHandler(deps), createTrainHandler(deps), createSampleHandler(deps)];
  const seen: string[] = [];
  for (const run of stages) {
    expect(await run({ personalizationId: id })).toBe('done');
    seen.push((await db.personalizations.findById(id))!.status);
  }
  expect(seen).toEqual(['augmenting', 'augmenting', 'sampling', 'succeeded']);
  const row = (await db.personalizations.findById(id))!;
  expect(row.startedAt).not.toBeNull();
  expect(row.finishedAt).not.toBeNull();
  const progress = row.progress as { stage: string; step: number; total: number }[];
  expect(progress.map((p) => p.stage).sort()).toEqual(['augment', 'gsa', 'sample', 'train']);
  expect(progress.find((p) => p.stage === 'train')).toEqual({ stage: 'train', step: 12, total: 12 });
  // each stage ends at step == total in the unit it reported in while running (augment: a draft and a composition per example)
  expect(progress.find((p) => p.stage === 'augment')).toEqual({ stage: 'augment', step: 4, total: 4 });
  expect(progress.find((p) => p.stage === 'gsa')).toEqual({ stage: 'gsa', step: 2, total: 2 });
  // the metrics summary a client reads without downloading metrics.json
  const metrics = row.metrics as {
    steps: { phase1: number; phase2: number };
    loss: { phase2: { last: Record<string, number> } };
    attention: { after: { token: string; iou: number }[] };
  };
  expect(metrics.steps.phase1 + metrics.steps.phase2).toBe(12);
  expect(metrics.loss.phase2.last.total).toBeGreaterThan(0);
  expect(metrics.attention.after.map((a) => a.token)).toEqual(['<asset0>', '<asset1>']);
  expect((row.metrics as { timingsMs: Record<string, number> }).timingsMs.train).toBeGreaterThan(0);
  // no CLIP configured (StageDeps.clipModel, CLIP_MODEL): no scores anywhere (sample-clip.int.test.ts has them)
  expect(row.metrics).not.toHaveProperty('evaluation');

  const artifacts = await db.artifacts.list(id);
  const kinds = new Set(artifacts.map((a) => a.kind));
  for (const k of ['image', 'augmented', 'embeddings', 'adapters', 'checkpoint', 'sample', 'report', 'metrics', 'manifest'] as const)
    expect(kinds).toContain(k);
  for (const a of artifacts) expect(a.key.startsWith(`tenants/${bed.tenantId}/personalizations/${id}/run/`)).toBe(true);
  // recorded with the type they are served as
  for (const a of artifacts) if (a.key.endsWith('.png')) expect([a.key, a.contentType]).toEqual([a.key, 'image/png']);
  for (const a of artifacts) if (a.key.endsWith('.json')) expect([a.key, a.contentType]).toEqual([a.key, 'application/json']);
  // the report shows each augmented example after GSA beside its composition before it
  const report = Buffer.from(await deps.storage.get(`tenants/${bed.tenantId}/personalizations/${id}/run/report.html`)).toString('utf8');
  for (const alt of ['composed image 0', 'augmented image 0', 'composed image 1', 'augmented image 1']) expect(report).toContain(`alt="${alt}`);
  const samples = await db.samples.listByRequest(initialRequestId(id));
  expect(samples.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
  for (const s of samples) expect(await deps.storage.head(s.artifactKey!)).not.toBeNull();
  expect(samples.map((s) => s.metrics ?? null)).toEqual([null, null]);
  expect(report).toContain('No CLIP model configured');

  // every stage again (BullMQ delivers at least once): no-ops, the same artifact rows, no second event
  for (const run of stages) expect(await run({ personalizationId: id })).toBe('skipped');
  expect((await db.artifacts.list(id)).length).toBe(artifacts.length);
  expect(await db.samples.listByRequest(initialRequestId(id))).toHaveLength(2);

  await deliverAll();
  const deliveries = await db.webhooks.list(bed.tenantId, { personalizationId: id });
  expect(deliveries.map((d) => [d.eventType, d.status, d.attempts, d.lastStatusCode]).sort()).toEqual([
    ['personalization.training.completed', 'delivered', 1, 200],
    ['samples.completed', 'delivered', 1, 200],
  ]);
  const secret = (await db.tenants.get(bed.tenantId))!.webhookSecret;
  const bodies = receiver.received.map((r) => verifyWebhook(secret, r.headers as Record<string, string>, r.body) as { type: string; data: { id: string } });
  expect(bodies.map((b) => b.type).sort()).toEqual(['personalization.training.completed', 'samples.completed']);
  expect(bodies.every((b) => b.data.id === id)).toBe(true);
  expect(bodies.find((b) => b.type === 'samples.completed')!.data).toEqual({ id, status: 'succeeded', requestId: initialRequestId(id) });

  // a later samples request: rows created by the API, rendered by samples.generate
  const rows = await db.samples.createMany(bed.tenantId, id, 'req1', [
    { prompt: 'a photo of <asset0>', seed: 7, settings: { steps: 3 } },
    { prompt: 'a photo of <asset1> on the grass', seed: 8, settings: { steps: 3 } },
  ]);
  const generate = createGenerateHandler(deps);
  await generate({ personalizationId: id, requestId: 'req1', sampleIds: rows.map((r) => r.id) });
  const done = await db.samples.listByRequest('req1');
  expect(done.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  for (const r of done) expect(await deps.storage.head(r.artifactKey!)).not.toBeNull();
  const count = (await db.artifacts.list(id)).length;
  await generate({ personalizationId: id, requestId: 'req1', sampleIds: rows.map((r) => r.id) });
  expect((await db.artifacts.list(id)).length).toBe(count);
  await deliverAll();
  expect(
    (await db.webhooks.list(bed.tenantId, { personalizationId: id })).filter((d) => d.eventType === 'samples.completed' && d.status === 'delivered'),
  ).toHaveLength(2);
});

it('a job whose input is bad fails for good with a code and a personalization.failed event', async () => {
  const { deps, db } = bed;
  const id = await bed.addJob({}, hookUrl);
  const row = (await db.personalizations.findById(id))!;
  await deps.storage.put(row.imageKey, new TextEncoder().encode('not an image'));
  await expect(createAugmentHandler(deps)({ personalizationId: id })).rejects.toMatchObject({ name: 'PermanentStageError', code: 'UNREADABLE_IMAGE' });
  const failed = (await db.personalizations.findById(id))!;
  expect(failed.status).toBe('failed');
  expect(failed.error).toMatchObject({ code: 'UNREADABLE_IMAGE' });
  const [d] = await db.webhooks.list(bed.tenantId, { personalizationId: id });
  expect(d).toMatchObject({
    eventType: 'personalization.failed',
    payload: { type: 'personalization.failed', data: { id, status: 'failed', error: { code: 'UNREADABLE_IMAGE' } } },
  });
});

it('work for a deleted personalization ends quietly: stages skip, sample requests render nothing', async () => {
  const { deps, db } = bed;
  const id = await bed.addJob({});
  expect(await db.personalizations.delete(bed.tenantId, id)).toBeTruthy();
  expect(await createAugmentHandler(deps)({ personalizationId: id })).toBe('skipped');
  expect(await createSampleHandler(deps)({ personalizationId: id })).toBe('skipped');
  await expect(createGenerateHandler(deps)({ personalizationId: id, requestId: 'gone', sampleIds: ['s1'] })).resolves.toBeUndefined();
});
