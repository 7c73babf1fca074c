/** worker-train: the `train` queue (personalization.train); GPU nodes set DEVICE=cuda. */
import { createWorker, trainCatalog } from '@dynasyn/queue';
import { closeOnSignals, stageJob, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';
import { createTrainHandler } from './handler.js';

const proc = await startWorkerProcess('train', loadEnv(), (deps, options) =>
  createWorker(trainCatalog, { 'personalization.train': stageJob(createTrainHandler(deps)) }, options));
closeOnSignals(proc);
