/**
 * The four stages in flow order on the tiny bundle with the tiny preset, against a local BlobStore: statuses,
 * progress, artifacts (recorded once although every stage runs twice), Sample rows, webhook events.
 */
import { createStageBed, type StageBed } from '../../../packages/stages/src/testing/fixture.js';
import { createAugmentHandler } from '../../worker-augment/src/handler.js';
import { createGsaHandler } from '../../worker-gsa/src/handler.js';
import { createTrainHandler } from '../../worker-train/src/handler.js';
import { createGenerateHandler, createSampleHandler } from './handler.js';

let bed: StageBed;
beforeAll(async () => { bed = await createStageBed(); });
afterAll(() => bed?.cleanup());

it('runs augment -> gsa -> train -> sample, each stage safe to run twice', async () => {
  const { deps } = bed;
  const job = await bed.addJob('p1');
  const stages = [createAugmentHandler(deps), createGsaHandler(deps), createTrainHandler(deps), createSampleHandler(deps)];
  const artifactsAfter: number[] = [];
  for (const run of stages) {
    expect(await run({ personalizationId: job.id })).toBe('done');
    artifactsAfter.push(deps.db.artifacts.size);
  }
  const row = deps.db.jobs.get(job.id)!;
  expect(row.status).toBe('succeeded');
  expect(deps.db.statuses).toEqual(['augmenting', 'augmenting', 'training', 'sampling', 'sampling', 'succeeded']);
  expect(row.progress.map((p) => p.stage).sort()).toEqual(['augment', 'gsa', 'sample', 'train']);
  expect(row.progress.find((p) => p.stage === 'train')).toEqual({ stage: 'train', step: 12, total: 12 });
  const kinds = new Set([...deps.db.artifacts.values()].map((a) => a.kind));
  for (const k of ['image', 'augmented', 'embeddings', 'adapters', 'checkpoint', 'sample', 'report', 'metrics', 'manifest']) expect(kinds).toContain(k);
  for (const a of deps.db.artifacts.values()) expect(a.key.startsWith(`tenants/tenant1/personalizations/${job.id}/run/`)).toBe(true);
  const samples = [...deps.db.samples.values()];
  expect(samples).toHaveLength(2);
  for (const s of samples) expect(await deps.storage.head(s.artifactKey!)).toMatchObject({ size: expect.any(Number) });
  const events = [...deps.db.deliveries.values()].map((d) => d.payload.type);
  expect(events).toEqual(['personalization.training.completed', 'samples.completed']);

  // every stage again (BullMQ delivers at least once): no-ops, no new artifacts, no second event
  for (const run of stages) expect(await run({ personalizationId: job.id })).toBe('skipped');
  expect(deps.db.artifacts.size).toBe(artifactsAfter.at(-1));
  expect(deps.db.deliveries.size).toBe(2);

  // a later samples request
  for (const [i, prompt] of ['a photo of <asset0>', 'a photo of <asset1> on the grass'].entries()) {
    await deps.db.upsertSample({ id: `r1-${i}`, personalizationId: job.id, tenantId: 'tenant1', requestId: 'r1', prompt, seed: 7 + i, settings: { steps: 3 }, status: 'queued' });
  }
  const generate = createGenerateHandler(deps);
  await generate({ personalizationId: job.id, requestId: 'r1', sampleIds: ['r1-0', 'r1-1'] });
  const rows = await deps.db.getSamples(['r1-0', 'r1-1']);
  expect(rows.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  const before = deps.db.artifacts.size;
  await generate({ personalizationId: job.id, requestId: 'r1', sampleIds: ['r1-0', 'r1-1'] });
  expect(deps.db.artifacts.size).toBe(before);
  expect([...deps.db.deliveries.values()].filter((d) => d.payload.type === 'samples.completed')).toHaveLength(2);
});

it('a job whose input is bad fails for good with a code and a personalization.failed event', async () => {
  const { deps } = bed;
  const job = await bed.addJob('p2');
  await deps.storage.put(job.imageKey, new TextEncoder().encode('not an image'));
  await expect(createAugmentHandler(deps)({ personalizationId: job.id })).rejects.toMatchObject({ name: 'PermanentStageError', code: 'UNREADABLE_IMAGE' });
  const row = deps.db.jobs.get(job.id)!;
  expect(row.status).toBe('failed');
  expect(row.error).toMatchObject({ code: 'UNREADABLE_IMAGE' });
  expect([...deps.db.deliveries.values()].find((d) => d.payload.data.id === 'p2')?.payload).toMatchObject({ type: 'personalization.failed', data: { status: 'failed', error: { code: 'UNREADABLE_IMAGE' } } });
});
