/**
 * The gsa stage handler (queue `gsa`, personalization.gsa): dynasyn's `gsaStage` (METHOD.md augmentation step 5,
 * Guided SDE Augmentation of every composed image with the noun prompt and the seed the augment stage drew), so
 * the result is the set `augment` gives in one process. The finished set goes to `<run>/augmented/` and the
 * manifest lists phase `augment`; training reads only that. Status `augmenting`; progress stage `gsa`, one step
 * per image; a cancel stops it within one UNet call. A stored finished set makes it a no-op.
 */
import { gsaStage } from '@dynasyn/dynasyn';
import { PermanentStageError } from '../errors.js';
import { runStage } from '../lifecycle.js';
import type { StageDeps } from '../ports.js';
import { openRunDir, removeRunDir, storedPhases, uploadFile, uploadFolder } from '../run-dir.js';
import type { StageHandler } from './augment.js';

export function createGsaHandler(deps: StageDeps): StageHandler {
  return (call) =>
    runStage(deps, call, {
      status: 'augmenting',
      done: async (job) => (await storedPhases(deps, job)).includes('augment'),
      run: async ({ job, options, signal, progress, deps }) => {
        if (!(await storedPhases(deps, job)).includes('compose')) {
          throw new PermanentStageError('STAGE_ORDER', `personalization ${job.id}: gsa ran before augment stored the composed set`);
        }
        const run = await openRunDir(deps, job, { folders: ['composed'] });
        try {
          await gsaStage({ ...run, options, signal, onProgress: progress });
          await uploadFolder(deps, job, run.dir, 'augmented', 'augmented');
          await uploadFile(deps, job, run.dir, 'metrics.json', 'metrics');
          await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
        } finally {
          removeRunDir(run.dir, deps.logger);
        }
      },
    });
}
