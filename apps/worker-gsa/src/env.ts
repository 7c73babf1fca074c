/** This worker's environment, validated once at start (the schema is shared by the four stage workers). */
import { parseWorkerEnv, type WorkerEnv } from '@dynasyn/stages';

export type { WorkerEnv };
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): WorkerEnv => parseWorkerEnv(source);
