/** worker-sample: the `sample` queue (personalization.sample, samples.generate); handlers and process lifecycle live in @dynasyn/stages. */
import { closeOnSignals, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';

closeOnSignals(await startWorkerProcess('sample', loadEnv()));
