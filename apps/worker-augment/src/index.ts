/** worker-augment: the `augment` queue (personalization.augment). */
import { augmentCatalog, createWorker } from '@dynasyn/queue';
import { closeOnSignals, stageJob, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';
import { createAugmentHandler } from './handler.js';

const proc = await startWorkerProcess('augment', loadEnv(), (deps, options) =>
  createWorker(augmentCatalog, { 'personalization.augment': stageJob(createAugmentHandler(deps)) }, options));
closeOnSignals(proc);
