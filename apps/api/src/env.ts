/**
 * The API's environment, validated once at start (STYLE.md: apps read process.env here and nowhere else). The
 * pieces every app shares (database, queues, storage, logging, shutdown, HTTP, webhooks) come from
 * @dynasyn/config; the rest is the API's own.
 */
import {
  checkStageLease,
  count,
  databaseEnv,
  flag,
  httpEnv,
  logEnv,
  optional,
  parseEnvironment,
  queueEnv,
  shutdownEnv,
  stageEnv,
  storageEnv,
  webhookEnv,
} from '@dynasyn/config';
import { z } from 'zod';

export const envSchema = z.object({
  ...httpEnv.shape,
  ...databaseEnv.shape,
  ...queueEnv.shape,
  ...storageEnv.shape,
  ...webhookEnv.shape,
  ...logEnv.shape,
  ...shutdownEnv.shape,
  MAX_UPLOAD_BYTES: count(1, 20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: count(1, 40_000_000),
  MAX_SUBJECTS: count(1, 4),
  RATE_LIMIT_MAX: count(1, 600),
  /** Requests per client address (IPv6: per /64) per window, before authentication; above the per-key limit. */
  RATE_LIMIT_ADDRESS_MAX: count(1, 1200),
  RATE_LIMIT_WINDOW_MS: count(1, 60_000),
  /**
   * Which proxies' X-Forwarded-For/-Proto to believe (Fastify trustProxy): `true` (every hop), a hop count, or a
   * comma list of addresses/CIDRs. Unset: none, so behind a load balancer every client shares its address.
   */
  TRUST_PROXY: optional(
    z
      .string()
      .transform((v): boolean | number | string[] =>
        v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v.split(',').map((s) => s.trim()),
      ),
  ),
  /** Opens /ops (dashboard, bull-board); unset: /ops is not served. */
  OPS_TOKEN: optional(z.string().min(16)),
  /** Bearer token Prometheus scrapes /metrics with; unset: /metrics is not served. */
  METRICS_TOKEN: optional(z.string().min(16)),
  /**
   * The workers' stage lease: running work with no write for longer is reported stuck (/ops, /metrics). Give the API
   * the workers' values: the lease is STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset (stageLeaseSeconds).
   */
  STAGE_LEASE_SECONDS: stageEnv.shape.STAGE_LEASE_SECONDS,
  /** The workers' job lock source; the API reads it only as the lease's default (and checks the lease against it). */
  STAGE_LOCK_SECONDS: stageEnv.shape.STAGE_LOCK_SECONDS,
  PRESIGN_EXPIRES_SECONDS: count(1, 3600),
  /** Serve the OpenAPI document and UI at /docs. */
  DOCS: flag(true),
  /**
   * Deliver webhooks from this process (the `webhooks` queue). The API runs on every deployment and the
   * deliveries are short HTTP calls, so this is where they live unless a dedicated process takes them.
   */
  WEBHOOK_WORKER: flag(true),
  /** Apply pending migrations at start (single-machine setups). */
  MIGRATE_ON_START: flag(false),
});

export type Env = z.output<typeof envSchema>;

/** Validates `source` (process.env); throws an EnvError naming every bad variable (or a lease shorter than the lock, naming both). */
export function parseEnv(source: NodeJS.ProcessEnv): Env {
  return checkStageLease(parseEnvironment(envSchema, source));
}
