/**
 * The augment stage (METHOD.md augmentation steps 1-4): prompts -> drafts -> attention pseudo masks ->
 * composition with the reference subjects -> inpainted holes, with dynasyn's `composeOnBase`. Each example's
 * GSA seed is drawn here with the others, so the gsa stage that follows reproduces `augment` exactly. The
 * composed set goes to `<run>/composed/` in storage and the manifest lists phase `compose`. Status
 * `augmenting`; a personalization whose composed (or finished) set is stored is a no-op.
 */
import { join } from 'node:path';
import { artifactPath, composeOnBase, markPhaseCompleted, saveAugmented } from '@dynasyn/dynasyn';
import { openRunDir, removeRunDir, runStage, storedPhases, uploadFile, uploadFolder, type StageCall, type StageDeps } from '@dynasyn/stages';

export type AugmentHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createAugmentHandler(deps: StageDeps): AugmentHandler {
  return (call) => runStage(deps, call, {
    status: 'augmenting',
    done: async (job) => {
      const phases = await storedPhases(deps, job);
      return phases.includes('compose') || phases.includes('augment');
    },
    run: async ({ job, options, signal, progress }) => {
      const run = await openRunDir(deps, job);
      try {
        const composed = await composeOnBase(run.bundle, run.input, options, {
          cacheDir: join(run.dir, 'cache'),
          // composition takes no signal; its progress events come after each draft and each composed image, so
          // a cancel (or shutdown) thrown from here stops it within one image
          onProgress: (e) => { signal.throwIfAborted(); progress(e); },
        });
        signal.throwIfAborted();
        await saveAugmented(artifactPath(run.dir, 'composed'), composed, 'composed');
        markPhaseCompleted(run.dir, 'compose');
        // in composeAugmentations' unit (a draft and a composition per example), 1/1 when there are none
        const total = Math.max(1, 2 * composed.length);
        progress({ stage: 'augment', step: total, total });
        await uploadFolder(deps, job, run.dir, 'composed', 'augmented');
        await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
      } finally {
        removeRunDir(run.dir);
      }
    },
  });
}
