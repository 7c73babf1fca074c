/**
 * The train stage handler (queue `train`, personalization.train): dynasyn's `trainStage` (phase 1 and 2) on the
 * reference and the stored augmented set, status `training`. The checkpoint in storage is downloaded first, so a
 * worker that was killed or preempted resumes exactly where the last uploaded checkpoint stopped; checkpoints go
 * up as they are written. Cancel (polled) aborts at the next step. On success: embeddings, adapters, attention
 * maps, metrics and manifest go up, the metrics summary goes on the row, and
 * `personalization.training.completed` is raised.
 */
import { trainStage, type MetricsSummary } from '@dynasyn/dynasyn';
import { notify } from '@dynasyn/webhooks';
import { runStage } from '../lifecycle.js';
import type { PersonalizationJob, StageDeps } from '../ports.js';
import { openRunDir, removeRunDir, storedPhases, uploadFile, uploadFolder } from '../run-dir.js';
import type { StageHandler } from './augment.js';
import { checkpointUpload } from './checkpoint-upload.js';

export function createTrainHandler(deps: StageDeps): StageHandler {
  return (call) =>
    runStage(deps, call, {
      status: 'training',
      // a finished training raises its event again (deduplicated): a crash between upload and notify loses nothing
      done: async (job, attempt) => (await storedPhases(deps, job)).includes('phase2') && (await completed(attempt, job), true),
      run: async ({ job, options: o, signal, progress, deps }) => {
        let summary: MetricsSummary;
        const run = await openRunDir(deps, job, { folders: ['augmented', 'checkpoints'] });
        try {
          const upload = checkpointUpload(deps, job);
          // the service reports training as one stage: phase 2's steps continue phase 1's
          const total = o.train.phase1.steps + o.train.phase2.steps;
          let result;
          try {
            result = await trainStage({
              ...run,
              options: o,
              signal,
              onCheckpoint: upload.offer,
              onProgress: (e) => progress({ stage: 'train', step: e.step + (e.phase === 2 ? o.train.phase1.steps : 0), total }),
            });
          } finally {
            await upload.flush();
          }
          if (result.trained?.resumedFrom) deps.logger?.info({ id: job.id, ...result.trained.resumedFrom }, 'training resumed from the stored checkpoint');
          summary = result.summary;
          await uploadFile(deps, job, run.dir, 'embeddings.safetensors', 'embeddings');
          await uploadFile(deps, job, run.dir, 'adapters.safetensors', 'adapters');
          await uploadFolder(deps, job, run.dir, 'attention', 'image');
          await uploadFile(deps, job, run.dir, 'metrics.json', 'metrics');
          await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
        } finally {
          removeRunDir(run.dir, deps.logger);
        }
        await completed(deps, job, summary);
      },
    });
}

/** Training is done: status `sampling`, the metrics summary on the row (when just computed), the webhook event. */
async function completed(deps: StageDeps, job: PersonalizationJob, summary?: MetricsSummary): Promise<void> {
  await deps.db.setStatus(job.id, 'sampling', undefined, summary);
  await notify(deps.db, {
    tenantId: job.tenantId,
    url: job.webhookUrl,
    type: 'personalization.training.completed',
    personalizationId: job.id,
    data: { id: job.id, status: 'sampling' },
  });
}
