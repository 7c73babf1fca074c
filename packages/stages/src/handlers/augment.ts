/**
 * The augment stage handler (queue `augment`, personalization.augment): dynasyn's `augmentStage` (METHOD.md
 * augmentation steps 1-4, each example's GSA seed drawn with the others so the gsa stage reproduces `augment`
 * exactly) on the run directory; the composed set goes to `<run>/composed/` in storage and the manifest lists
 * phase `compose`. Status `augmenting`; a personalization whose composed (or finished) set is stored is a no-op.
 */
import { augmentStage } from '@dynasyn/dynasyn';
import { runStage, type StageCall } from '../lifecycle.js';
import type { StageDeps } from '../ports.js';
import { openRunDir, removeRunDir, storedPhases, uploadFile, uploadFolder } from '../run-dir.js';

export type StageHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createAugmentHandler(deps: StageDeps): StageHandler {
  return (call) =>
    runStage(deps, call, {
      status: 'augmenting',
      done: async (job) => {
        const phases = await storedPhases(deps, job);
        return phases.includes('compose') || phases.includes('augment');
      },
      run: async ({ job, options, signal, progress, deps }) => {
        const run = await openRunDir(deps, job);
        try {
          await augmentStage({ ...run, options, signal, onProgress: progress });
          await uploadFolder(deps, job, run.dir, 'composed', 'augmented');
          await uploadFile(deps, job, run.dir, 'metrics.json', 'metrics');
          await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
        } finally {
          removeRunDir(run.dir, deps.logger);
        }
      },
    });
}
