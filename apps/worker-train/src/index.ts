/** worker-train: the `train` queue (personalization.train; GPU nodes set DEVICE=cuda); handlers and process lifecycle live in @dynasyn/stages. */
import { closeOnSignals, startWorkerProcess } from '@dynasyn/stages';
import { loadEnv } from './env.js';

closeOnSignals(await startWorkerProcess('train', loadEnv()));
