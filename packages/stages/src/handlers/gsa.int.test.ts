/**
 * The gsa stage on the tiny bundle, a fresh Postgres database and a local BlobStore: it owns the SDEdit pass
 * (the augment stage stores composed images only), its result is exactly what dynasyn's one-process
 * `augmentOnBase` gives for the same job, it is a no-op the second time, it refuses to run before augment,
 * and a cancel stops it within seconds without storing a finished set.
 */
import { augmentOnBase, loadAugmented, loadComposed } from '@dynasyn/dynasyn';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { openRunDir, removeRunDir, runPrefix } from '../run-dir.js';
import { createAugmentHandler } from './augment.js';
import { waitFor } from '../../../queue/src/testing/wait.js';
import { createGsaHandler } from './gsa.js';

let bed: PgStageBed;
beforeAll(async () => {
  bed = await createPgStageBed();
});
afterAll(async () => {
  await bed?.cleanup();
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Downloads a stored set folder of `id` and loads it with `load`. */
async function stored<T>(id: string, folder: 'composed' | 'augmented', load: (dir: string) => Promise<T>): Promise<T> {
  const dir = join(bed.root, 'check', id, folder);
  mkdirSync(dir, { recursive: true });
  await bed.deps.storage.downloadPrefix(`${runPrefix({ tenantId: bed.tenantId, id })}/${folder}`, dir);
  try {
    return await load(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('augment stores composed images, gsa turns them into the set one-process augmentation gives', async () => {
  const { deps, db } = bed;
  const id = await bed.addJob({ augmentation: { count: 2 } });
  expect(await createAugmentHandler(deps)({ personalizationId: id })).toBe('done');
  const prefix = runPrefix({ tenantId: bed.tenantId, id });
  expect(await deps.storage.list(`${prefix}/augmented`)).toEqual([]); // no GSA in the augment stage
  const composed = await stored(id, 'composed', loadComposed);
  expect(composed).toHaveLength(2);

  expect(await createGsaHandler(deps)({ personalizationId: id })).toBe('done');
  const row = (await db.personalizations.findById(id))!;
  expect(row.status).toBe('augmenting');
  expect((row.progress as { stage: string }[]).find((p) => p.stage === 'gsa')).toEqual({ stage: 'gsa', step: 2, total: 2 });
  const augmented = await stored(id, 'augmented', loadAugmented);
  expect(augmented.map((e) => [e.prompt, e.seeds, e.pasteOrder])).toEqual(composed.map((e) => [e.prompt, e.seeds, e.pasteOrder]));
  augmented.forEach((e, i) => {
    expect(same(e.image.data, composed[i]!.image.data)).toBe(false); // GSA changed each image
    e.masks.forEach((m, k) => expect(same(m.data, composed[i]!.masks[k]!.data)).toBe(true));
  });

  // the same job in one process (dynasyn's augmentOnBase: composition and GSA together) gives the same images
  const job = (await deps.db.getPersonalization(id))!;
  const run = await openRunDir({ ...deps, workDir: join(bed.root, 'reference') }, job);
  try {
    const reference = await augmentOnBase(run.bundle, run.input, { ...job.options, intraOpNumThreads: 1 });
    expect(reference.map((e) => e.prompt)).toEqual(augmented.map((e) => e.prompt));
    reference.forEach((e, i) => expect(same(e.image.data, augmented[i]!.image.data)).toBe(true));
  } finally {
    removeRunDir(run.dir);
  }

  // delivered twice (BullMQ is at-least-once): a no-op with the same artifact rows
  const artifacts = (await db.artifacts.list(id)).length;
  expect(await createGsaHandler(deps)({ personalizationId: id })).toBe('skipped');
  expect(await createAugmentHandler(deps)({ personalizationId: id })).toBe('skipped');
  expect((await db.artifacts.list(id)).length).toBe(artifacts);
});

it('gsa before augment fails for good with STAGE_ORDER', async () => {
  const id = await bed.addJob({ augmentation: { count: 1 } });
  await expect(createGsaHandler(bed.deps)({ personalizationId: id })).rejects.toMatchObject({ name: 'PermanentStageError', code: 'STAGE_ORDER' });
  expect((await bed.db.personalizations.findById(id))!.error).toMatchObject({ code: 'STAGE_ORDER' });
});

it('a cancel stops GSA within seconds and stores no finished set', async () => {
  // the paper's 700-step DDPM GSA on 6 images: minutes of work, so the cancel lands mid-image
  const id = await bed.addJob({ augmentation: { count: 6, gsaSchedule: 'paper' } });
  expect(await createAugmentHandler(bed.deps)({ personalizationId: id })).toBe('done');
  const running = createGsaHandler(bed.deps)({ personalizationId: id });
  // the stage's first progress row (step 0, written before the first UNet call) says GSA has begun
  const gsaBegun = async () => ((await bed.db.personalizations.findById(id))!.progress as { stage: string }[]).some((p) => p.stage === 'gsa');
  await waitFor('GSA to report progress', gsaBegun, 60_000);
  const asked = Date.now();
  await bed.db.personalizations.requestCancel(bed.tenantId, id);
  expect(await running).toBe('canceled');
  expect(Date.now() - asked).toBeLessThan(5000);
  expect((await bed.db.personalizations.findById(id))!.status).toBe('canceled');
  expect(await bed.deps.storage.list(`${runPrefix({ tenantId: bed.tenantId, id })}/augmented`)).toEqual([]);
});
