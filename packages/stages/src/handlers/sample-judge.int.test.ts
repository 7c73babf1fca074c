/**
 * The sample stage with a CLIP and the toy-world judge (the worker's CLIP_MODEL and JUDGE_MODEL, resolved as the
 * worker does; the committed models/toyworld-judge): on the tiny bundle, the judge's identity acc., attributes kept
 * and prompt acc. per category join CLIP's in the personalization's `metrics`, on each Sample row, in report.html
 * and in the `samples.completed` event, with the reference identities the judge read inside the uploaded masks;
 * the figures are what dynasyn's own evaluateSamples (the CLI's `--clip --judge` scoring) gives on the stored images.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ClipModel,
  categorizePrompt,
  evaluateSamples,
  loadToyworldJudge,
  readInputs,
  toClassPrompt,
  type MetricsSummary,
  type SampleMetrics,
} from '@dynasyn/dynasyn';
import { decode } from '../../../imaging/src/index.js';
import { deliverOnce, deliveryStoreFrom, verifyWebhook } from '@dynasyn/webhooks';
import { writeTinyClip } from '../../../dynasyn/src/testing/tiny-clip.js';
import { startTestReceiver, type TestReceiver } from '../../../webhooks/src/testing/receiver.js';
import { resolveClipModel } from '../clip-model.js';
import { resolveJudgeModel } from '../judge-model.js';
import { runPrefix } from '../run-dir.js';
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { createAugmentHandler } from './augment.js';
import { createGsaHandler } from './gsa.js';
import { createSampleHandler, initialRequestId } from './sample.js';
import { createTrainHandler } from './train.js';

const JUDGE_DIR = join(fileURLToPath(import.meta.url), '..', '..', '..', '..', '..', 'models', 'toyworld-judge');
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

it("adds the judge's scores per category to metrics, Sample rows, the report and the samples.completed event", async () => {
  const source = {
    cacheDir: join(bed.root, 'cache'),
    openStore: () => {
      throw new Error('a file:// model setting opens no store');
    },
  };
  const clipModel = (await resolveClipModel({ ...source, clipModel: pathToFileURL(clipDir).href, runtime: { intraOpNumThreads: 1 } }))!;
  const judgeModel = (await resolveJudgeModel({ ...source, judgeModel: pathToFileURL(JUDGE_DIR).href, clipModel }))!;
  expect(judgeModel).toBe(JUDGE_DIR);
  const deps = { ...bed.deps, clipModel, judgeModel };
  const { db } = bed;
  const id = await bed.addJob({ sampling: { prompts: PROMPTS } }, receiver.url);
  const stages = [createAugmentHandler(deps), createGsaHandler(deps), createTrainHandler(deps), createSampleHandler(deps)];
  for (const run of stages) expect(await run({ personalizationId: id })).toBe('done');

  const row = (await db.personalizations.findById(id))!;
  expect(row.status).toBe('succeeded');
  const evaluation = (row.metrics as unknown as MetricsSummary).evaluation!;
  expect(Object.keys(evaluation.byCategory)).toEqual(['plain', 'action', 'interaction']);
  expect(evaluation.judge?.model).toBe(JUDGE_DIR);
  expect(evaluation.judge?.identities).toHaveLength(2);

  // the same figures from dynasyn's scoring on what the stage stored: the uploaded reference and masks, the sample PNGs
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
  const judge = await loadToyworldJudge(JUDGE_DIR);
  const expected = await evaluateSamples(clip, { reference: image, masks, tokens: ['<asset0>', '<asset1>'], samples }, { model: JUDGE_DIR, judge }).finally(
    async () => {
      await clip.release();
      await judge.release?.();
    },
  );
  expect(evaluation.judge).toEqual(expected.summary.judge);
  for (const [category, want] of [...Object.entries(expected.summary.byCategory), ['overall', expected.summary.overall] as const]) {
    const got = category === 'overall' ? evaluation.overall : evaluation.byCategory[category]!;
    for (const key of ['identity', 'attributes', 'prompt'] as const) {
      expect({ category, key, present: key in got }).toEqual({ category, key, present: true });
      if (want[key] === null) expect(got[key]).toBeNull();
      else expect(got[key]).toBeCloseTo(want[key]!, 9);
    }
    expect(got.clipT).toBeCloseTo(want.clipT, 6);
  }
  // each Sample row (what GET /v1/samples serves) carries its own judge scores beside CLIP's
  for (const [i, r] of rows.entries()) {
    const m = r.metrics as unknown as SampleMetrics;
    expect(Object.keys(m).sort()).toEqual(['attributes', 'clipI', 'clipT', 'identity', 'prompt']);
    expect([m.identity, m.attributes, m.prompt]).toEqual([expected.perSample[i]!.identity, expected.perSample[i]!.attributes, expected.perSample[i]!.prompt]);
  }

  const report = Buffer.from(await deps.storage.get(`${runPrefix(job)}/report.html`)).toString('utf8');
  expect(report).toMatch(/<th>identity acc\.<\/th><th>attributes kept<\/th><th>prompt acc\.<\/th>/);
  const stored = JSON.parse(Buffer.from(await deps.storage.get(`${runPrefix(job)}/metrics.json`)).toString('utf8')) as { evaluation?: unknown };
  expect(stored.evaluation).toEqual(evaluation);

  // the event, signed and delivered, carries the evaluation the API shows, the judge's figures with it
  const store = deliveryStoreFrom(db);
  for (const d of bed.enqueued.splice(0)) await deliverOnce(store, d, { allowPrivate: true });
  const secret = (await db.tenants.get(bed.tenantId))!.webhookSecret;
  const completed = receiver.received
    .map((r) => verifyWebhook(secret, r.headers as Record<string, string>, r.body) as { type: string; data: Record<string, unknown> })
    .find((b) => b.type === 'samples.completed')!;
  expect(completed.data).toEqual({ id, status: 'succeeded', requestId: initialRequestId(id), evaluation });
  expect((completed.data['evaluation'] as typeof evaluation).byCategory['interaction']).toHaveProperty('identity');
});
