/** The augment stage on the tiny bundle and a fresh Postgres database: a cancel stops it within one image. */
import { createPgStageBed, type PgStageBed } from '../testing/fixture.js';
import { runPrefix } from '../run-dir.js';
import { waitFor } from '../../../queue/src/testing/wait.js';
import { createAugmentHandler } from './augment.js';

let bed: PgStageBed;
beforeAll(async () => {
  bed = await createPgStageBed();
});
afterAll(async () => {
  await bed?.cleanup();
});

it('stops augmenting soon after a cancel request and leaves no composed set', async () => {
  const id = await bed.addJob({ augmentation: { count: 12 } });
  const running = createAugmentHandler(bed.deps)({ personalizationId: id });
  const augStep = async () =>
    ((await bed.db.personalizations.findById(id))!.progress as { stage: string; step: number }[]).find((p) => p.stage === 'augment')?.step ?? 0;
  await waitFor('augment progress', async () => (await augStep()) >= 1, 60_000);
  const asked = Date.now();
  await bed.db.personalizations.requestCancel(bed.tenantId, id);
  expect(await running).toBe('canceled');
  expect(Date.now() - asked).toBeLessThan(5000);
  expect((await bed.db.personalizations.findById(id))!.status).toBe('canceled');
  expect(await bed.deps.storage.list(`${runPrefix({ tenantId: bed.tenantId, id })}/composed`)).toEqual([]);
  expect(await augStep()).toBeLessThan(24);
});
