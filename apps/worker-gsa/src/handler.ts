/**
 * The gsa stage. dynasyn's `augment` runs GSA inside the augmentation (per-example seeds drawn together), so
 * the SDEdit pass already ran in the augment stage; this stage checks that the augmented set in storage is
 * complete and loadable (every image and mask present, as the trainer will need them) and records its progress.
 * Splitting the SDEdit pass out needs `augment` to expose its composed images (open problem, README).
 */
import { artifactPath, loadAugmented } from '@dynasyn/dynasyn';
import { openRunDir, PermanentStageError, removeRunDir, runStage, storedPhases, type StageCall, type StageDeps } from '@dynasyn/stages';

export type GsaHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createGsaHandler(deps: StageDeps): GsaHandler {
  return (call) => runStage(deps, call, {
    status: 'augmenting',
    done: async (job) => (await storedPhases(deps, job)).includes('phase2'),
    run: async ({ job, progress }) => {
      if (!(await storedPhases(deps, job)).includes('augment')) {
        throw new PermanentStageError('STAGE_ORDER', `personalization ${job.id}: gsa ran before augment finished`);
      }
      const run = await openRunDir(deps, job, { folders: ['augmented'] });
      try {
        const set = await loadAugmented(artifactPath(run.dir, 'augmented'));
        progress({ stage: 'gsa', step: set.length, total: set.length });
      } finally {
        removeRunDir(run.dir);
      }
    },
  });
}
