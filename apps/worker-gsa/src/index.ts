/** worker-gsa: the `gsa` queue (personalization.gsa). */
import { createWorker, gsaCatalog } from '@dynasyn/queue';
import { closeOnSignals, stageJob, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';
import { createGsaHandler } from './handler.js';

const proc = await startWorkerProcess('gsa', loadEnv(), (deps, options) =>
  createWorker(gsaCatalog, { 'personalization.gsa': stageJob(createGsaHandler(deps)) }, options));
closeOnSignals(proc);
