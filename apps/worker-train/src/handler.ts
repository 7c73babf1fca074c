/**
 * The train stage: phase 1 and 2 (dynasyn's `trainPersonalization`) on the reference and the augmented set,
 * status `training`. The checkpoint in storage is downloaded first, so a worker that was killed or preempted
 * resumes exactly where the last uploaded checkpoint stopped; checkpoints go up as they are written. Cancel
 * (polled) aborts at the next step. On success: embeddings, adapters, attention maps, metrics and manifest
 * go up, and `personalization.training.completed` is raised.
 */
import {
  artifactPath, attentionVsMask, graphCacheDir, loadAugmented, markPhaseCompleted, MetricsRecorder, summarizeMetrics, trainPersonalization, writeAttentionHeatmaps, writeLearnedConcepts,
  type MetricsSummary,
} from '@dynasyn/dynasyn';
import { notify } from '@dynasyn/webhooks';
import { openRunDir, removeRunDir, runStage, storedPhases, uploadFile, uploadFolder, type PersonalizationJob, type StageCall, type StageDeps } from '@dynasyn/stages';
import { checkpointSync } from './checkpoint-sync.js';

export type TrainHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

export function createTrainHandler(deps: StageDeps): TrainHandler {
  return (call) => runStage(deps, call, {
    status: 'training',
    // a finished training raises its event again (deduplicated): a crash between upload and notify loses nothing
    done: async (job) => (await storedPhases(deps, job)).includes('phase2') && (await completed(deps, job), true),
    run: async ({ job, options: o, signal, progress }) => {
      let summary: MetricsSummary | undefined;
      const run = await openRunDir(deps, job, { folders: ['augmented', 'checkpoints'] });
      try {
        const augmented = await loadAugmented(artifactPath(run.dir, 'augmented'));
        const ckDir = artifactPath(run.dir, 'checkpoints');
        const sync = checkpointSync(deps, job, ckDir);
        const metrics = MetricsRecorder.open(run.dir);
        let trained;
        try {
          trained = await metrics.time('train', () => trainPersonalization({
            bundle: run.bundle, input: run.input, augmented, options: o.train, seed: o.seed,
            // derived graphs are shared by the jobs on this backbone: only the first derives them
            cacheDir: graphCacheDir(run.bundle.dir), checkpointDir: ckDir, executionProviders: o.executionProviders,
            ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
            onProgress: (e) => { sync.poll(); progress({ stage: 'train', step: e.step + (e.phase === 2 ? o.train.phase1.steps : 0), total: o.train.phase1.steps + o.train.phase2.steps }); },
            onMetrics: (row) => metrics.recordStep(row),
            signal,
          }));
        } finally {
          sync.poll(); // the checkpoint written at a phase end or on abort
          await sync.flush();
        }
        if (trained.resumedFrom) deps.logger?.info({ id: job.id, ...trained.resumedFrom }, 'training resumed from the stored checkpoint');
        for (const row of trained.metrics) metrics.recordStep(row);
        writeLearnedConcepts(run.dir, trained.concepts);
        const { grid: [gh, gw], before, after } = trained.alignment;
        for (const [when, snap] of [['before', before], ['after', after]] as const) {
          await writeAttentionHeatmaps(run.dir, when, run.input.image, snap.placeholders.map((p) => p.map), gh, gw);
          metrics.setAttention(when, snap.placeholders.map((p, i) => attentionVsMask(p.token, p.map, gh, gw, run.input.subjects[i]!.mask)));
        }
        metrics.flush();
        summary = summarizeMetrics(metrics.toJSON());
        markPhaseCompleted(run.dir, 'phase1');
        markPhaseCompleted(run.dir, 'phase2');
        await uploadFile(deps, job, run.dir, 'embeddings.safetensors', 'embeddings');
        await uploadFile(deps, job, run.dir, 'adapters.safetensors', 'adapters');
        await uploadFolder(deps, job, run.dir, 'attention', 'image');
        await uploadFile(deps, job, run.dir, 'metrics.json', 'metrics');
        await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
      } finally {
        removeRunDir(run.dir);
      }
      await completed(deps, job, summary);
    },
  });
}

/** Training is done: status `sampling`, the metrics summary on the row (when just computed), the webhook event. */
async function completed(deps: StageDeps, job: PersonalizationJob, summary?: MetricsSummary): Promise<void> {
  await deps.db.setStatus(job.id, 'sampling', undefined, summary);
  await notify(deps.db, { tenantId: job.tenantId, url: job.webhookUrl, type: 'personalization.training.completed', personalizationId: job.id, data: { id: job.id, status: 'sampling' } });
}
