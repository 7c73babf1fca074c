/**
 * The environment every stage worker app validates once (its src/env.ts calls parseWorkerEnv(process.env)).
 * Defined here so the four apps agree; nothing here reads process.env itself.
 */
import { z } from 'zod';

const optional = z.string().optional().transform((v) => (v === '' ? undefined : v));

export const workerEnvSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be postgres://user@host:port/db'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be redis://host:port[/db]').default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix, the same as the API's. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('dynasyn'),
  /** `s3://bucket/prefix` or `file:///dir`. */
  STORAGE_URL: z.string().regex(/^(s3|file):\/\//, 'must be s3://bucket/prefix or file:///dir'),
  S3_ENDPOINT: z.string().url().optional(),
  AWS_REGION: optional,
  AWS_ACCESS_KEY_ID: optional,
  AWS_SECRET_ACCESS_KEY: optional,
  /** A bundle directory, file:// or s3:// URL; default the tiny random-weight bundle made in CACHE_DIR. */
  BACKBONE: optional,
  DEVICE: z.enum(['cpu', 'cuda']).default('cpu'),
  /** Jobs at once; default 1 (a GPU stage holds the device). */
  CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** Scratch space for run directories. */
  WORK_DIR: z.string().default('/tmp/dynasyn-work'),
  /** Where downloaded or generated bundles are kept. */
  CACHE_DIR: z.string().default('/tmp/dynasyn-cache'),
  /** onnxruntime intra-op threads per session. */
  THREADS: z.coerce.number().int().min(1).optional(),
  /** Seconds a stage holds its job lock (renewed every half); a killed worker's job is retaken after it. */
  STAGE_LOCK_SECONDS: z.coerce.number().int().min(5).default(600),
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().positive().default(30),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug', 'silent']).default('info'),
});

export type WorkerEnv = z.output<typeof workerEnvSchema>;

/** Validates `source`; throws one Error naming every bad variable. */
export function parseWorkerEnv(source: Record<string, string | undefined>): WorkerEnv {
  const r = workerEnvSchema.safeParse(source);
  if (!r.success) throw new Error(`invalid environment: ${r.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  return r.data;
}
