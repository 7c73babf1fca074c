/** worker-augment: the `augment` queue (personalization.augment); handlers and process lifecycle live in @dynasyn/stages. */
import { closeOnSignals, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';

closeOnSignals(await startWorkerProcess('augment', loadEnv()));
