/**
 * The sample stage. `personalization.sample`: the initial samples (the options' prompts, or built-in ones)
 * with the learned placeholders and adapters, samples.json, report.html, Sample rows -> status `succeeded`
 * and `samples.completed`. `samples.generate`: the Sample rows a later request created, each image under
 * `<run>/requests/<requestId>/<sampleId>.png`, rows updated, `samples.completed` for the request.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  categorizePrompt, createPersonalizedPipeline, DEFAULT_SAMPLE_COUNTS, defaultSamplePrompts, markPhaseCompleted, readLearnedConcepts, readSamples,
  renderReport, sampleConcepts, writeSamples, type DynasynOptions, type SamplePrompt,
} from '@dynasyn/dynasyn';
import { loadBundle } from '@dynasyn/diffusion';
import { encodePng } from '@dynasyn/imaging';
import { notify } from '@dynasyn/webhooks';
import {
  classify, completedPhases, openRunDir, PermanentStageError, purgeIfDeleted, removeRunDir, runPrefix, runStage, storedPhases, uploadFile, uploadFolder,
  type PersonalizationJob, type StageCall, type StageDeps,
} from '@dynasyn/stages';

export type SampleHandler = (call: StageCall) => Promise<'done' | 'skipped' | 'canceled'>;

/** Request id of the initial samples (the Sample rows the sample stage creates). */
export const initialRequestId = (personalizationId: string): string => `${personalizationId}-initial`;

function initialPrompts(o: DynasynOptions, subjects: number): SamplePrompt[] {
  return o.sampling.prompts.length
    ? o.sampling.prompts.map((prompt) => ({ prompt, category: categorizePrompt(prompt) }))
    : defaultSamplePrompts(subjects, DEFAULT_SAMPLE_COUNTS[o.preset]);
}

export function createSampleHandler(deps: StageDeps): SampleHandler {
  return (call) => runStage(deps, call, {
    status: 'sampling',
    done: async (job) => (await storedPhases(deps, job)).includes('report') && (await succeeded(deps, job), true),
    run: async ({ job, options: o, signal, progress }) => {
      // what report.html shows, and the learned concepts (not the checkpoints nor later requests' images)
      const run = await openRunDir(deps, job, { folders: ['input', 'composed', 'augmented', 'attention'], files: ['embeddings.safetensors', 'adapters.safetensors'] });
      try {
        if (!completedTraining(run.dir)) throw new PermanentStageError('STAGE_ORDER', `personalization ${job.id}: sample ran before training finished`);
        const concepts = readLearnedConcepts(run.dir, { backboneDir: deps.backbone });
        const prompts = initialPrompts(o, run.input.subjects.length);
        const pipeline = await createPersonalizedPipeline(run.bundle, concepts, { executionProviders: o.executionProviders, cacheDir: join(run.dir, 'cache', 'personalized') });
        let records;
        try {
          records = await sampleConcepts(pipeline, concepts, prompts, o.sampling, { seed: o.seed, signal, onProgress: (step, total) => progress({ stage: 'sample', step, total }) });
        } finally {
          await pipeline.release();
        }
        await writeSamples(run.dir, records, o.sampling);
        markPhaseCompleted(run.dir, 'sample');
        await renderReport(run.dir);
        markPhaseCompleted(run.dir, 'report');
        await uploadFolder(deps, job, run.dir, 'samples', 'sample');
        await uploadFile(deps, job, run.dir, 'report.html', 'report');
        const settings = { steps: o.sampling.steps, guidance: o.sampling.guidance, scheduler: o.sampling.scheduler };
        await deps.db.saveSamples({
          tenantId: job.tenantId, personalizationId: job.id, requestId: initialRequestId(job.id),
          items: readSamples(run.dir).map((s) => ({ prompt: s.prompt, seed: s.seed, settings, artifactKey: `${runPrefix(job)}/${s.file}` })),
        });
        await uploadFile(deps, job, run.dir, 'manifest.json', 'manifest'); // last: it marks the stage done
      } finally {
        removeRunDir(run.dir);
      }
      await succeeded(deps, job);
    },
  });
}

/** The manifest downloaded with the run directory lists phase2 once training uploaded its outputs. */
const completedTraining = (dir: string): boolean => completedPhases(dir).includes('phase2');

async function succeeded(deps: StageDeps, job: PersonalizationJob): Promise<void> {
  await deps.db.setStatus(job.id, 'succeeded');
  await notify(deps.db, {
    tenantId: job.tenantId, personalizationId: job.id, url: job.webhookUrl, type: 'samples.completed', dedupeKey: `samples.completed:${initialRequestId(job.id)}`,
    data: { id: job.id, status: 'succeeded', requestId: initialRequestId(job.id) },
  });
}

export interface GenerateCall {
  personalizationId: string;
  requestId: string;
  sampleIds: string[];
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
    try {
      await generate(deps, job, call);
    } catch (err) {
      if (await purgeIfDeleted(deps, job)) return;
      throw err;
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
      for (const f of ['manifest.json', 'embeddings.safetensors', 'adapters.safetensors']) {
        if (await deps.storage.head(`${prefix}/${f}`)) {
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, f), await deps.storage.get(`${prefix}/${f}`));
        }
      }
      const o = job.options;
      const concepts = readLearnedConcepts(dir, { backboneDir: deps.backbone });
      const providers = deps.executionProviders ?? o.executionProviders;
      const pipeline = await createPersonalizedPipeline(loadBundle(deps.backbone), concepts, { executionProviders: providers, cacheDir: join(dir, 'cache') });
      try {
        for (const r of todo) {
          call.signal?.throwIfAborted();
          await deps.db.updateSample(r.id, { status: 'running' });
          try {
            const settings = { steps: r.settings.steps ?? o.sampling.steps, guidance: r.settings.guidance ?? o.sampling.guidance, scheduler: r.settings.scheduler ?? o.sampling.scheduler, seeds: [r.seed] };
            const [rec] = await sampleConcepts(pipeline, concepts, [{ prompt: r.prompt, category: categorizePrompt(r.prompt) }], settings, { seed: r.seed, ...(call.signal ? { signal: call.signal } : {}) });
            const key = `${prefix}/requests/${call.requestId}/${r.id}.png`;
            const b = await deps.storage.put(key, await encodePng(rec!.image), { contentType: 'image/png' });
            await deps.db.recordArtifact({ personalizationId: job.id, kind: 'sample', key: b.key, sha256: b.sha256, size: b.size, contentType: b.contentType });
            await deps.db.updateSample(r.id, { status: 'succeeded', artifactKey: b.key });
          } catch (e) {
            if (call.signal?.aborted) throw e;
            const c = classify(e);
            await deps.db.updateSample(r.id, { status: 'failed', error: { code: c.code, message: c.message } });
            if (!c.permanent) throw e;
          }
        }
      } finally {
        await pipeline.release();
      }
    } finally {
      removeRunDir(dir);
    }
  }
  await notify(deps.db, {
    tenantId: job.tenantId, personalizationId: job.id, url: job.webhookUrl, type: 'samples.completed', dedupeKey: `samples.completed:${call.requestId}`,
    data: { id: job.id, status: job.status, requestId: call.requestId, samples: call.sampleIds },
  });
}
