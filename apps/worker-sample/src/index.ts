/** worker-sample: the `sample` queue (personalization.sample, samples.generate). */
import { createWorker, sampleCatalog } from '@dynasyn/queue';
import { closeOnSignals, stageJob, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';
import { createGenerateHandler, createSampleHandler } from './handler.js';

const proc = await startWorkerProcess('sample', loadEnv(), (deps, options) => {
  const generate = createGenerateHandler(deps);
  return createWorker(sampleCatalog, {
    'personalization.sample': stageJob(createSampleHandler(deps)),
    'samples.generate': (p, ctx) => generate({ personalizationId: p.personalizationId, requestId: p.requestId, sampleIds: p.sampleIds, signal: ctx.signal }),
  }, options);
});
closeOnSignals(proc);
