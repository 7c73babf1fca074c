/**
 * The sample queue's handlers. `personalization.sample`: dynasyn's `sampleStage` and `reportStage` (the initial
 * samples with the learned placeholders and adapters, samples.json, report.html), Sample rows -> status
 * `succeeded` and `samples.completed`. With a CLIP (StageDeps.clipModel, the worker's CLIP_MODEL) dynasyn's
 * `evaluateStage` scores the samples between the two, as `dynasyn personalize --clip` does: each Sample row gets
 * its CLIP-T / CLIP-I, and the per-category summary (`evaluation`) goes into the personalization's `metrics`,
 * report.html and the `samples.completed` event. With a toy-world judge too (StageDeps.judgeModel, JUDGE_MODEL;
 * `--judge`) each gets the judge's identity acc., attributes kept and prompt acc. beside CLIP's. `samples.generate`: the Sample rows a later request created, rendered
 * with dynasyn's `openConceptSampler`, each image under `<run>/requests/<requestId>/<sampleId>.png`, rows
 * updated, `samples.completed` for the request.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  completedPhases,
  evaluateStage,
  openConceptSampler,
  readMetrics,
  readSamples,
  reportStage,
  sampleStage,
  summarizeMetrics,
  type MetricsFile,
  type MetricsSummary,
} from '@dynasyn/dynasyn';
import { withCleanup } from '@dynasyn/domain';
import { loadBundle } from '@dynasyn/diffusion';
import { notify } from '@dynasyn/webhooks';
import { classify, PermanentStageError, StageSuperseded } from '../errors.js';
import { attemptDeps, purgeIfDeleted, runStage, stageOptions } from '../lifecycle.js';
import type { PersonalizationJob, StageDeps } from '../ports.js';
import { openRunDir, removeRunDir, runPrefix, storedPhases, uploadFile, uploadFolder } from '../run-dir.js';
import type { StageHandler } from './augment.js';

/** Request id of the initial samples (the Sample rows the sample stage creates). */
export const initialRequestId = (personalizationId: string): string => `${personalizationId}-initial`;

export function createSampleHandler(deps: StageDeps): StageHandler {
  return (call) =>
    runStage(deps, call, {
      status: 'sampling',
      done: async (job, attempt) => {
        const phases = await storedPhases(deps, job);
        if (!phases.includes('report')) return false;
        await succeeded(attempt, job, phases.includes('evaluate') ? await storedMetricsSummary(deps, job) : undefined);
        return true;
      },
      run: async ({ job, options: o, signal, progress, deps }) => {
        let summary: MetricsSummary | undefined;
        // what report.html shows, and the learned concepts (not the checkpoints nor later requests' images)
        const run = await openRunDir(deps, job, {
          folders: ['input', 'composed', 'augmented', 'attention'],
          files: ['embeddings.safetensors', 'adapters.safetensors'],
        });
        try {
          if (!completedPhases(run.dir).includes('phase2'))
            throw new PermanentStageError('STAGE_ORDER', `personalization ${job.id}: sample ran before training finished`);
          await sampleStage({ ...run, options: o, signal, onProgress: progress });
          if (deps.clipModel !== undefined) {
            await evaluateStage({ dir: run.dir, options: o, onProgress: progress }, deps.clipModel, deps.judgeModel);
            summary = summarizeMetrics(readMetrics(run.dir));
          }
          await reportStage(run);
          await uploadFolder(deps, job, run.dir, 'samples', 'sample');
          await uploadFile(deps, job, run.dir, 'report.html', 'report');
          if (summary) await uploadFile(deps, job, run.dir, 'metrics.json', 'metrics');
          const settings = { steps: o.sampling.steps, guidance: o.sampling.guidance, scheduler: o.sampling.scheduler };
          await deps.db.saveSamples({
            tenantId: job.tenantId,
            personalizationId: job.id,
            requestId: initialRequestId(job.id),
            // read back: the evaluation wrote each sample's scores into samples.json
            items: readSamples(run.dir).map((s) => ({
              prompt: s.prompt,
              seed: s.seed,
              settings,
              artifactKey: `${runPrefix(job)}/${s.file}`,
              ...(s.metrics ? { metrics: s.metrics } : {}),
            })),
          });
          await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
        } finally {
          removeRunDir(run.dir, deps.logger);
        }
        await succeeded(deps, job, summary);
      },
    });
}

/** The summary of the stored metrics.json (a rerun after the stage's outputs were stored, but maybe not its status). */
async function storedMetricsSummary(deps: StageDeps, job: PersonalizationJob): Promise<MetricsSummary> {
  const text = Buffer.from(await deps.storage.get(`${runPrefix(job)}/metrics.json`)).toString('utf8');
  // the file as MetricsRecorder writes it (NaN as null): summarizeMetrics reads such values as no number
  return summarizeMetrics(JSON.parse(text) as MetricsFile);
}

/**
 * Status `succeeded` and the event. `summary`, when the samples were scored: the personalization's `metrics` again
 * (training's summary with the `evaluation`), and the event carries the `evaluation`; otherwise both stay as training left them.
 */
async function succeeded(deps: StageDeps, job: PersonalizationJob, summary?: MetricsSummary): Promise<void> {
  await deps.db.setStatus(job.id, 'succeeded', undefined, summary);
  await notify(deps.db, {
    tenantId: job.tenantId,
    personalizationId: job.id,
    url: job.webhookUrl,
    type: 'samples.completed',
    dedupeKey: `samples.completed:${initialRequestId(job.id)}`,
    data: {
      id: job.id,
      status: 'succeeded',
      requestId: initialRequestId(job.id),
      ...(summary?.evaluation ? { evaluation: summary.evaluation } : {}),
    },
  });
}

export interface GenerateCall {
  personalizationId: string;
  requestId: string;
  sampleIds: string[];
  /** The request job's epoch (its payload's; absent there: 0). Default: the rows' (an in-process run). */
  epoch?: number;
  signal?: AbortSignal;
}

export type GenerateHandler = (call: GenerateCall) => Promise<void>;

/**
 * `samples.generate`: renders the rows of one request that are not done yet; done rows are left alone. A deleted
 * personalization ends it quietly; deleted while rendering, what it uploaded meanwhile is removed (purgeIfDeleted).
 */
export function createGenerateHandler(deps: StageDeps): GenerateHandler {
  return async (call) => {
    const job = await deps.db.getPersonalization(call.personalizationId);
    if (!job) {
      deps.logger?.info({ id: call.personalizationId, requestId: call.requestId }, 'personalization deleted: no samples to render');
      return;
    }
    const what = `sample request ${call.requestId}`;
    const current = await deps.db.getRequestEpoch(call.requestId);
    const epoch = call.epoch ?? current ?? 0;
    if (current !== undefined && current !== epoch) {
      deps.logger?.warn({ requestId: call.requestId, epoch, current }, 'samples.generate job of an attempt the reconciler took over: not run');
      throw new StageSuperseded(what, epoch);
    }
    // the request's own fence (its rows' epoch): a takeover aborts the rendering, and refuses every write after it
    const ctl = new AbortController();
    const onOuter = () => ctl.abort(call.signal?.reason);
    call.signal?.addEventListener('abort', onOuter, { once: true });
    if (call.signal?.aborted) onOuter();
    const poll = setInterval(() => {
      deps.db.getRequestEpoch(call.requestId).then(
        (now) => {
          if (now !== undefined && now !== epoch && !ctl.signal.aborted) ctl.abort(new StageSuperseded(what, epoch));
        },
        () => {
          /* a missed poll is retried at the next tick */
        },
      );
    }, deps.cancelPollMs ?? 1000);
    try {
      await generate(attemptDeps(deps, { requestId: call.requestId, epoch }), job, { ...call, signal: ctl.signal });
    } catch (err) {
      const superseded = ctl.signal.reason instanceof StageSuperseded ? ctl.signal.reason : err instanceof StageSuperseded ? err : undefined;
      if (superseded) {
        deps.logger?.warn(
          { requestId: call.requestId, epoch, err: (err as Error).message },
          'sample request taken over by the reconciler: stopped without writing',
        );
        throw superseded;
      }
      if (await purgeIfDeleted(deps, job)) return;
      throw err;
    } finally {
      clearInterval(poll);
      call.signal?.removeEventListener('abort', onOuter);
    }
    await purgeIfDeleted(deps, job);
  };
}

async function generate(deps: StageDeps, job: PersonalizationJob, call: GenerateCall): Promise<void> {
  const wanted = new Set(call.sampleIds);
  const rows = (await deps.db.getRequestSamples(call.requestId)).filter((r) => wanted.has(r.id) && r.personalizationId === job.id);
  const todo = rows.filter((r) => r.status !== 'succeeded');
  if (todo.length) {
    const dir = join(deps.workDir, `${job.id}-${call.requestId}`);
    const prefix = runPrefix(job);
    try {
      // the learned concepts only: no input, no run directory of the stages
      for (const f of ['manifest.json', 'embeddings.safetensors', 'adapters.safetensors']) {
        if (await deps.storage.head(`${prefix}/${f}`)) {
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, f), await deps.storage.get(`${prefix}/${f}`));
        }
      }
      const sampler = await openConceptSampler({ dir, bundle: loadBundle(deps.backbone), options: stageOptions(deps, job) });
      const render = async () => {
        for (const r of todo) {
          call.signal?.throwIfAborted();
          await deps.db.updateSample(r.id, { status: 'running' });
          try {
            const png = await sampler.renderPng({ prompt: r.prompt, seed: r.seed, settings: r.settings }, call.signal);
            const b = await deps.storage.put(`${prefix}/requests/${call.requestId}/${r.id}.png`, png, { contentType: 'image/png' });
            await deps.db.recordArtifact({ personalizationId: job.id, kind: 'sample', key: b.key, sha256: b.sha256, size: b.size, contentType: b.contentType });
            await deps.db.updateSample(r.id, { status: 'succeeded', artifactKey: b.key });
          } catch (e) {
            if (call.signal?.aborted || e instanceof StageSuperseded) throw e;
            const c = classify(e);
            await deps.db.updateSample(r.id, { status: 'failed', error: { code: c.code, message: c.message } });
            if (!c.permanent) throw e;
          }
        }
      };
      await withCleanup(render, () => [() => sampler.release()]); // a release failure never replaces the job's error
    } finally {
      removeRunDir(dir, deps.logger);
    }
  }
  await notify(deps.db, {
    tenantId: job.tenantId,
    personalizationId: job.id,
    url: job.webhookUrl,
    type: 'samples.completed',
    dedupeKey: `samples.completed:${call.requestId}`,
    data: { id: job.id, status: job.status, requestId: call.requestId, samples: call.sampleIds },
  });
}
