/**
 * The gsa stage (METHOD.md augmentation step 5): Guided SDE Augmentation of every composed image the augment
 * stage stored, with the noun prompt and the GSA seed drawn there (dynasyn's `gsaOnBase`), so the result is
 * the set `augment` would give in one process. The finished set goes to `<run>/augmented/` and the manifest
 * lists phase `augment`; training reads only that. Status `augmenting`; progress stage `gsa`, one step per
 * image; a cancel stops it within one UNet call. Runs twice safely: a stored finished set makes it a no-op.
 */
import { join } from 'node:path';
import { artifactPath, gsaOnBase, loadComposed, markPhaseCompleted, saveAugmented } from '@dynasyn/dynasyn';
import { openRunDir, PermanentStageError, removeRunDir, runStage, storedPhases, uploadFile, uploadFolder, type StageCall, type StageDeps } from '@dynasyn/stages';

export type GsaHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createGsaHandler(deps: StageDeps): GsaHandler {
  return (call) => runStage(deps, call, {
    status: 'augmenting',
    done: async (job) => (await storedPhases(deps, job)).includes('augment'),
    run: async ({ job, options, signal, progress }) => {
      if (!(await storedPhases(deps, job)).includes('compose')) {
        throw new PermanentStageError('STAGE_ORDER', `personalization ${job.id}: gsa ran before augment stored the composed set`);
      }
      const run = await openRunDir(deps, job, { folders: ['composed'] });
      try {
        const composed = await loadComposed(artifactPath(run.dir, 'composed'));
        const total = Math.max(1, composed.length); // 1/1 when there is nothing to do, as every stage
        progress({ stage: 'gsa', step: 0, total });
        const augmented = await gsaOnBase(run.bundle, composed, options, { cacheDir: join(run.dir, 'cache'), signal, onProgress: progress });
        signal.throwIfAborted();
        await saveAugmented(artifactPath(run.dir, 'augmented'), augmented);
        markPhaseCompleted(run.dir, 'augment');
        progress({ stage: 'gsa', step: total, total });
        await uploadFolder(deps, job, run.dir, 'augmented', 'augmented');
        await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
      } finally {
        removeRunDir(run.dir);
      }
    },
  });
}
