/**
 * The environment every stage worker app validates once (its src/env.ts calls parseWorkerEnv(process.env)): the
 * shared pieces of @dynasyn/config plus what only a worker process has. Nothing here reads process.env itself.
 */
import { count, databaseEnv, logEnv, parseEnvironment, queueEnv, shutdownEnv, stageEnv, storageEnv } from '@dynasyn/config';
import { z } from 'zod';

export const workerEnvSchema = z.object({
  ...databaseEnv.shape,
  ...queueEnv.shape,
  ...storageEnv.shape,
  ...stageEnv.shape,
  ...logEnv.shape,
  ...shutdownEnv.shape,
  /** Jobs at once; default 1 (a GPU stage holds the device). */
  CONCURRENCY: count(1, 1, 64),
  /** Scratch space for run directories. */
  WORK_DIR: z.string().default('/tmp/dynasyn-work'),
  /** Where downloaded or generated bundles are kept. */
  CACHE_DIR: z.string().default('/tmp/dynasyn-cache'),
});

export type WorkerEnv = z.output<typeof workerEnvSchema>;

/** Validates `source`; throws one EnvError naming every bad variable. */
export function parseWorkerEnv(source: Record<string, string | undefined>): WorkerEnv {
  return parseEnvironment(workerEnvSchema, source);
}
