/** worker-gsa: the `gsa` queue (personalization.gsa); handlers and process lifecycle live in @dynasyn/stages. */
import { closeOnSignals, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';

closeOnSignals(await startWorkerProcess('gsa', loadEnv()));
