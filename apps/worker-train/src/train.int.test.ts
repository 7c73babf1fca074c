/**
 * The train stage on the tiny bundle: cancel reaches a running training within seconds, and a worker stopped
 * mid-training (its job aborted, its scratch directory gone) resumes from the checkpoint in storage and ends
 * with exactly the embeddings and adapters of an uninterrupted run.
 */
import { createStageBed, type StageBed } from '../../../packages/stages/src/testing/fixture.js';
import { runPrefix } from '../../../packages/stages/src/index.js';
import { createAugmentHandler } from '../../worker-augment/src/handler.js';
import { createGsaHandler } from '../../worker-gsa/src/handler.js';
import { createTrainHandler } from './handler.js';

let bed: StageBed;
beforeAll(async () => { bed = await createStageBed(); });
afterAll(() => bed?.cleanup());

/** A job through augment (no augmented examples, to keep it short) and gsa, ready to train. */
async function readyToTrain(id: string, phase1: number, phase2: number) {
  const job = await bed.addJob(id, { augmentation: { count: 0 }, train: { phase1: { steps: phase1 }, phase2: { steps: phase2 }, checkpointEvery: 2 } });
  await createAugmentHandler(bed.deps)({ personalizationId: id });
  await createGsaHandler(bed.deps)({ personalizationId: id });
  return job;
}

const trainSteps = (id: string) => bed.deps.db.progressWrites.filter((p) => p.stage === 'train').length && bed.deps.db.jobs.get(id)!.progress.find((p) => p.stage === 'train')?.step;

async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('stops a running training within seconds of a cancel request', async () => {
  const job = await readyToTrain('c1', 400, 6);
  const running = createTrainHandler(bed.deps)({ personalizationId: job.id });
  await until(() => (trainSteps(job.id) ?? 0) >= 2);
  const t0 = Date.now();
  bed.deps.db.jobs.get(job.id)!.cancelRequested = true;
  expect(await running).toBe('canceled');
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(bed.deps.db.jobs.get(job.id)!.status).toBe('canceled');
  expect(trainSteps(job.id)).toBeLessThan(400);
  // the checkpoint written at the cancel is in storage
  expect(await bed.deps.storage.head(`${runPrefix(job)}/checkpoints/checkpoint.safetensors`)).not.toBeNull();
  expect([...bed.deps.db.deliveries.values()].filter((d) => d.payload.data.id === job.id)).toEqual([]);
});

it('resumes from the stored checkpoint after an interrupted run and matches an uninterrupted one', async () => {
  const whole = await readyToTrain('r-whole', 6, 4);
  expect(await createTrainHandler(bed.deps)({ personalizationId: whole.id })).toBe('done');

  const cut = await readyToTrain('r-cut', 6, 4);
  const stop = new AbortController();
  const first = createTrainHandler(bed.deps)({ personalizationId: cut.id, signal: stop.signal });
  await until(() => (trainSteps(cut.id) ?? 0) >= 3);
  stop.abort(new Error('worker killed'));
  await expect(first).rejects.toMatchObject({ code: 'CANCELLED' });
  expect(bed.deps.db.jobs.get(cut.id)!.status).toBe('training'); // not failed: the job goes back to the queue
  expect(await bed.deps.storage.head(`${runPrefix(cut)}/embeddings.safetensors`)).toBeNull();

  const writesBefore = bed.deps.db.progressWrites.length;
  expect(await createTrainHandler(bed.deps)({ personalizationId: cut.id })).toBe('done');
  const resumedAt = bed.deps.db.progressWrites.slice(writesBefore).find((p) => p.stage === 'train')!;
  expect(resumedAt.step).toBeGreaterThan(1); // the first step after the resume, not step 1

  for (const f of ['embeddings.safetensors', 'adapters.safetensors']) {
    const a = await bed.deps.storage.get(`${runPrefix(whole)}/${f}`);
    const b = await bed.deps.storage.get(`${runPrefix(cut)}/${f}`);
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
  }
  const events = [...bed.deps.db.deliveries.values()].filter((d) => d.payload.data.id === cut.id).map((d) => d.payload.type);
  expect(events).toEqual(['personalization.training.completed']);
});
