/** The API's environment, validated once at start (STYLE.md: apps read process.env here and nowhere else). */
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', ''])
  .default('false')
  .transform((v) => v === 'true' || v === '1');

export const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url(),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix; lets several deployments (or test runs) share one Redis. */
  QUEUE_PREFIX: z.string().default('dynasyn'),
  /** `s3://bucket/prefix` (AWS variables + S3_ENDPOINT) or `file:///dir`. */
  STORAGE_URL: z.string().default('file://./.dynasyn/storage'),
  S3_ENDPOINT: z.string().url().optional(),
  AWS_REGION: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  WEBHOOK_ALLOW_PRIVATE: bool,
  MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: z.coerce.number().int().positive().default(40_000_000),
  MAX_SUBJECTS: z.coerce.number().int().positive().default(4),
  RATE_LIMIT_MAX: z.coerce.number().int().positive().default(600),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().positive().default(60_000),
  /** Opens /ops (dashboard, bull-board); unset: /ops is not served. */
  OPS_TOKEN: z.string().min(16).optional(),
  PRESIGN_EXPIRES_SECONDS: z.coerce.number().int().positive().default(3600),
  /** Serve the OpenAPI document and UI at /docs. */
  DOCS: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1'),
  /**
   * Deliver webhooks from this process (the `webhooks` queue). The API runs on every deployment and the
   * deliveries are short HTTP calls, so this is where they live unless a dedicated process takes them.
   */
  WEBHOOK_WORKER: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1'),
  /** Apply pending migrations at start (single-machine setups). */
  MIGRATE_ON_START: bool,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds to finish in-flight requests on SIGTERM before exiting anyway. */
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().positive().default(10),
});

export type Env = z.infer<typeof envSchema>;

export function parseEnv(source: NodeJS.ProcessEnv): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
