/**
 * The environment every stage worker app validates once (its src/env.ts calls parseWorkerEnv(process.env)): the
 * shared pieces of @dynasyn/config plus what only a worker process has. Nothing here reads process.env itself.
 */
import { checkStageLease, count, databaseEnv, logEnv, parseEnvironment, queueEnv, shutdownEnv, stageEnv, storageEnv } from '@dynasyn/config';
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
  /** Seconds between the reconciler's passes (each worker process; one pass at a time across them). */
  RECONCILE_INTERVAL_SECONDS: count(1, 30, 3600),
  /** Times lost work is put back before it fails with RECOVERY_LIMIT. */
  RECONCILE_MAX_RECOVERIES: count(0, 3, 100),
  /** Where downloaded or generated bundles are kept. */
  CACHE_DIR: z.string().default('/tmp/dynasyn-cache'),
});

export type WorkerEnv = z.output<typeof workerEnvSchema>;

/** Validates `source`; throws one EnvError naming every bad variable (or a lease shorter than the lock, naming both). */
export function parseWorkerEnv(source: Record<string, string | undefined>): WorkerEnv {
  return checkStageLease(parseEnvironment(workerEnvSchema, source));
}
