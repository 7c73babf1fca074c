/**
 * The train stage on the tiny bundle and a fresh Postgres database: cancel reaches a running training within
 * seconds, a personalization deleted mid-training leaves nothing in storage (not even the checkpoint the stage
 * uploads as it stops), and a worker stopped mid-training (its job aborted, its scratch directory gone) resumes
 * from the checkpoint in storage and ends with exactly the embeddings and adapters of an uninterrupted run.
 */
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { personalizationRoot, runPrefix } from '../run-dir.js';
import { createAugmentHandler } from './augment.js';
import { createGsaHandler } from './gsa.js';
import { waitFor } from '../../../queue/src/testing/wait.js';
import { createTrainHandler } from './train.js';

let bed: PgStageBed;
beforeAll(async () => {
  bed = await createPgStageBed();
});
afterAll(async () => {
  await bed?.cleanup();
});

/** A job through augment (no augmented examples, to keep it short) and gsa, ready to train. */
async function readyToTrain(phase1: number, phase2: number): Promise<string> {
  const id = await bed.addJob(
    { augmentation: { count: 0 }, train: { phase1: { steps: phase1 }, phase2: { steps: phase2 }, checkpointEvery: 2 } },
    'https://hooks.example/x',
  );
  await createAugmentHandler(bed.deps)({ personalizationId: id });
  await createGsaHandler(bed.deps)({ personalizationId: id });
  return id;
}

const row = async (id: string) => (await bed.db.personalizations.findById(id))!;
const trainStep = async (id: string) => ((await row(id)).progress as { stage: string; step: number }[]).find((p) => p.stage === 'train')?.step ?? 0;
const key = (id: string, file: string) => `${runPrefix({ tenantId: bed.tenantId, id })}/${file}`;

const until = (cond: () => Promise<boolean>) => waitFor('training to reach the awaited step', cond, 60_000);

it('stops a running training within seconds of a cancel request', async () => {
  const id = await readyToTrain(400, 6);
  const running = createTrainHandler(bed.deps)({ personalizationId: id });
  await until(async () => (await trainStep(id)) >= 2);
  const t0 = Date.now();
  await bed.db.personalizations.requestCancel(bed.tenantId, id);
  expect(await running).toBe('canceled');
  expect(Date.now() - t0).toBeLessThan(5000);
  const r = await row(id);
  expect(r.status).toBe('canceled');
  expect(await trainStep(id)).toBeLessThan(400);
  expect(await bed.deps.storage.head(key(id, 'checkpoints/checkpoint.safetensors'))).not.toBeNull(); // written at the cancel
  expect(await bed.deps.storage.head(key(id, 'embeddings.safetensors'))).toBeNull();
  expect(await bed.db.webhooks.list(bed.tenantId, { personalizationId: id })).toEqual([]);
  // a retry of the job after the cancel does nothing
  expect(await createTrainHandler(bed.deps)({ personalizationId: id })).toBe('skipped');
});

it('a personalization whose row is deleted mid-training: the stage stops and removes what it uploaded after the delete', async () => {
  const id = await readyToTrain(400, 6);
  const running = createTrainHandler(bed.deps)({ personalizationId: id });
  await until(async () => (await trainStep(id)) >= 2);
  // No cancel request first: the stage can only stop because the row is gone, so its last write (the checkpoint
  // it uploads as it stops) lands after the delete and the stage alone must remove it.
  const root = personalizationRoot({ tenantId: bed.tenantId, id });
  await bed.deps.storage.deletePrefix(root);
  expect(await bed.db.personalizations.delete(bed.tenantId, id)).toBeTruthy();
  const t0 = Date.now();
  expect(await running).toBe('canceled'); // no error: nothing failed
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(await bed.deps.storage.list(root)).toEqual([]);
  // the job delivered again (or the next stage of the flow) finds nothing to do
  expect(await createTrainHandler(bed.deps)({ personalizationId: id })).toBe('skipped');
});

it('DELETE of a running personalization (cancel, sweep, row, sweep again) leaves nothing, whichever ends first', async () => {
  // With the cancel request first the stage may stop, upload its checkpoint and see its row still there (then
  // the API's second sweep, after the row delete, removes the checkpoint), or see the row gone (then the stage
  // removes it). Run a few times so both orders are likely to occur.
  for (let i = 0; i < 3; i++) {
    const id = await readyToTrain(400, 6);
    const running = createTrainHandler(bed.deps)({ personalizationId: id });
    await until(async () => (await trainStep(id)) >= 2);
    const root = personalizationRoot({ tenantId: bed.tenantId, id });
    // the steps of apps/api's DELETE /v1/personalizations/:id, in its order
    await bed.db.personalizations.requestCancel(bed.tenantId, id);
    await bed.deps.storage.deletePrefix(root);
    expect(await bed.db.personalizations.delete(bed.tenantId, id)).toBeTruthy();
    await bed.deps.storage.deletePrefix(root);
    expect(await running).toBe('canceled');
    expect(await bed.deps.storage.list(root)).toEqual([]);
  }
});

it('resumes from the stored checkpoint after an interrupted run and matches an uninterrupted one', async () => {
  const whole = await readyToTrain(6, 4);
  expect(await createTrainHandler(bed.deps)({ personalizationId: whole })).toBe('done');

  const cut = await readyToTrain(6, 4);
  const stop = new AbortController();
  const first = createTrainHandler(bed.deps)({ personalizationId: cut, signal: stop.signal });
  await until(async () => (await trainStep(cut)) >= 3);
  stop.abort(new Error('worker killed'));
  await expect(first).rejects.toMatchObject({ code: 'CANCELLED' });
  expect((await row(cut)).status).toBe('training'); // not failed: the job goes back to the queue
  expect(await bed.deps.storage.head(key(cut, 'embeddings.safetensors'))).toBeNull();
  const stoppedAt = await trainStep(cut);

  const resumed = createTrainHandler(bed.deps)({ personalizationId: cut });
  // the first progress written by the new run is past where the first run stopped, not step 1
  let firstSeen = 0;
  await until(async () => {
    const s = await trainStep(cut);
    if (s !== stoppedAt && firstSeen === 0) firstSeen = s;
    return firstSeen > 0 || (await row(cut)).status !== 'training';
  });
  expect(await resumed).toBe('done');
  expect(firstSeen).toBeGreaterThan(1);

  for (const f of ['embeddings.safetensors', 'adapters.safetensors']) {
    const a = await bed.deps.storage.get(key(whole, f));
    const b = await bed.deps.storage.get(key(cut, f));
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
  }
  const events = (await bed.db.webhooks.list(bed.tenantId, { personalizationId: cut })).map((d) => d.eventType);
  expect(events).toEqual(['personalization.training.completed']);
  // one artifact row per key, although the checkpoint was uploaded several times over two runs
  const keys = (await bed.db.artifacts.list(cut)).map((a) => a.key);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.filter((k) => k.endsWith('checkpoint.safetensors'))).toHaveLength(1);
});
