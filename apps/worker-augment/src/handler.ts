/**
 * The augment stage: prompts -> drafts -> pseudo masks -> composition -> GSA (dynasyn's `augment`, which draws
 * every example's seeds up front and runs the steps in that order; see README for why GSA is not split off)
 * -> the augmented set under `<run>/augmented/` in storage. Status `augmenting`; a finished set is a no-op.
 */
import { join } from 'node:path';
import { artifactPath, augmentOnBase, markPhaseCompleted, saveAugmented } from '@dynasyn/dynasyn';
import { openRunDir, removeRunDir, runStage, storedPhases, uploadFile, uploadFolder, type StageCall, type StageDeps } from '@dynasyn/stages';

export type AugmentHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createAugmentHandler(deps: StageDeps): AugmentHandler {
  return (call) => runStage(deps, call, {
    status: 'augmenting',
    done: async (job) => (await storedPhases(deps, job)).includes('augment'),
    run: async ({ job, options, signal, progress }) => {
      const run = await openRunDir(deps, job);
      try {
        const examples = await augmentOnBase(run.bundle, run.input, options, {
          cacheDir: join(run.dir, 'cache'),
          // augment takes no signal; its progress events come after each draft, composition and GSA image, so a
          // cancel (or shutdown) thrown from here stops it within one image
          onProgress: (e) => { signal.throwIfAborted(); progress(e); },
        });
        signal.throwIfAborted();
        await saveAugmented(artifactPath(run.dir, 'augmented'), examples);
        markPhaseCompleted(run.dir, 'augment');
        progress({ stage: 'augment', step: 1, total: 1 });
        await uploadFolder(deps, job, run.dir, 'augmented', 'augmented');
        await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
      } finally {
        removeRunDir(run.dir);
      }
    },
  });
}
