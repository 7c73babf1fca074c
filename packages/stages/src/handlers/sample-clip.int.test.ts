/**
 * The sample stage with a CLIP (the worker's CLIP_MODEL, resolved as the worker does): on the tiny bundle and a
 * tiny random CLIP, a personalization whose prompts span plain / action / interaction ends with CLIP-T / CLIP-I
 * per category in its `metrics`, on each Sample row, in report.html and in its `samples.completed` event; the
 * scores are what dynasyn's own evaluateSamples (the CLI's `--clip` scoring) gives on the stored images.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClipModel, categorizePrompt, evaluateSamples, readInputs, toClassPrompt, type MetricsSummary } from '@dynasyn/dynasyn';
import { decode } from '../../../imaging/src/index.js';
import { deliverOnce, deliveryStoreFrom, verifyWebhook } from '@dynasyn/webhooks';
import { writeTinyClip } from '../../../dynasyn/src/testing/tiny-clip.js';
import { startTestReceiver, type TestReceiver } from '../../../webhooks/src/testing/receiver.js';
import { resolveClipModel } from '../clip-model.js';
import { runPrefix } from '../run-dir.js';
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { createAugmentHandler } from './augment.js';
import { createGsaHandler } from './gsa.js';
import { createSampleHandler, initialRequestId } from './sample.js';
import { createTrainHandler } from './train.js';

let bed: PgStageBed;
let receiver: TestReceiver;
let clipDir: string;

beforeAll(async () => {
  bed = await createPgStageBed();
  receiver = await startTestReceiver();
  clipDir = mkdtempSync(join(tmpdir(), 'dynasyn-clip-'));
  writeTinyClip(clipDir);
});
afterAll(async () => {
  receiver?.close();
  await bed?.cleanup();
});

const PROMPTS = ['a photo of <asset0>', 'a photo of <asset1> rolling', '<asset0> next to <asset1>'];

it('scores the samples per category into metrics, Sample rows, the report and the samples.completed event', async () => {
  const clipModel = await resolveClipModel({
    clipModel: pathToFileURL(clipDir).href,
    cacheDir: join(bed.root, 'cache'),
    openStore: () => {
      throw new Error('a file:// CLIP_MODEL opens no store');
    },
    runtime: { intraOpNumThreads: 1 },
  });
  expect(clipModel).toBe(clipDir);
  const deps = { ...bed.deps, clipModel: clipModel! };
  const { db } = bed;
  const id = await bed.addJob({ sampling: { prompts: PROMPTS } }, receiver.url);
  const stages = [createAugmentHandler(deps), createGsaHandler(deps), createTrainHandler(deps), createSampleHandler(deps)];
  for (const run of stages) expect(await run({ personalizationId: id })).toBe('done');

  const row = (await db.personalizations.findById(id))!;
  expect(row.status).toBe('succeeded');
  const metrics = row.metrics as unknown as MetricsSummary;
  // training's summary is kept, the evaluation added
  expect(metrics.steps.phase1 + metrics.steps.phase2).toBe(12);
  const evaluation = metrics.evaluation!;
  expect(Object.keys(evaluation.byCategory)).toEqual(['plain', 'action', 'interaction']);
  expect(Object.values(evaluation.byCategory).map((c) => c.count)).toEqual([1, 1, 1]);
  expect((row.progress as { stage: string; step: number; total: number }[]).find((p) => p.stage === 'evaluate')).toEqual({
    stage: 'evaluate',
    step: 1,
    total: 1,
  });

  // the same scores from dynasyn's scoring function on what the stage stored: input crops and sample PNGs
  const job = { tenantId: bed.tenantId, id };
  const recheck = join(bed.root, `recheck-${id}`);
  await deps.storage.downloadPrefix(`${runPrefix(job)}/input`, join(recheck, 'input'));
  const { image, masks } = await readInputs(recheck);
  const rows = await db.samples.listByRequest(initialRequestId(id));
  expect(rows.map((r) => r.prompt)).toEqual(PROMPTS);
  const classWords = (row.subjects as { classWord: string }[]).map((s) => s.classWord);
  const samples = [];
  for (const r of rows)
    samples.push({
      image: await decode(await deps.storage.get(r.artifactKey!)),
      prompt: r.prompt,
      classPrompt: toClassPrompt(r.prompt, classWords),
      category: categorizePrompt(r.prompt),
    });
  const clip = await ClipModel.load(clipDir, { intraOpNumThreads: 1 });
  const expected = await evaluateSamples(clip, { reference: image, masks, tokens: ['<asset0>', '<asset1>'], samples }).finally(() => clip.release());
  for (const [category, want] of Object.entries(expected.summary.byCategory)) {
    const got = evaluation.byCategory[category]!;
    expect([category, got.count]).toEqual([category, want.count]);
    expect(got.clipT).toBeCloseTo(want.clipT, 6);
    expect(got.clipI).toBeCloseTo(want.clipI!, 6);
  }
  expect(evaluation.overall.clipT).toBeCloseTo(expected.summary.overall.clipT, 6);
  expect(evaluation.overall.clipI).toBeCloseTo(expected.summary.overall.clipI!, 6);
  // each Sample row (what GET /v1/samples serves) carries its own scores
  for (const [i, r] of rows.entries()) {
    const m = r.metrics as { clipT: number; clipI: number | null };
    expect(m.clipT).toBeCloseTo(expected.perSample[i]!.clipT, 6);
    expect(m.clipI).toBeCloseTo(expected.perSample[i]!.clipI!, 6);
  }

  const report = Buffer.from(await deps.storage.get(`${runPrefix(job)}/report.html`)).toString('utf8');
  expect(report).toContain('evaluation-table');
  expect(report).not.toContain('No CLIP model configured');
  const stored = JSON.parse(Buffer.from(await deps.storage.get(`${runPrefix(job)}/metrics.json`)).toString('utf8')) as { evaluation?: unknown };
  expect(stored.evaluation).toEqual(evaluation);

  // the event, signed and delivered, carries the evaluation the API shows
  const store = deliveryStoreFrom(db);
  for (const d of bed.enqueued.splice(0)) await deliverOnce(store, d, { allowPrivate: true });
  const secret = (await db.tenants.get(bed.tenantId))!.webhookSecret;
  const bodies = receiver.received.map(
    (r) => verifyWebhook(secret, r.headers as Record<string, string>, r.body) as { type: string; data: Record<string, unknown> },
  );
  const completed = bodies.find((b) => b.type === 'samples.completed')!;
  expect(completed.data).toEqual({ id, status: 'succeeded', requestId: initialRequestId(id), evaluation });
  // training's event comes before any score: unchanged
  expect(bodies.find((b) => b.type === 'personalization.training.completed')!.data).toEqual({ id, status: 'sampling' });

  // run again (at least once delivery): a no-op that keeps the metrics and raises no second event
  expect(await createSampleHandler(deps)({ personalizationId: id })).toBe('skipped');
  expect((await db.personalizations.findById(id))!.metrics).toEqual(metrics);
  const events = await db.webhooks.list(bed.tenantId, { personalizationId: id });
  expect(events.filter((e) => e.eventType === 'samples.completed')).toHaveLength(1);
});
