/**
 * Opens the real services from the environment (Postgres, Redis, storage) and the API's view of them; `close`
 * releases them in reverse order. Used by index.ts, and by `dynasyn serve` to run the API in-process.
 */
import { s3OptionsFrom, stageLeaseSeconds, webhookAllowCidrs } from '@dynasyn/config';
import { createDb, migrate } from '@dynasyn/db';
import { closeQueues, connectRedis, createQueues, redisOptions } from '@dynasyn/queue';
import { isForbiddenAddress, parseAllowCidrs, startWebhookWorker } from '@dynasyn/webhooks';
import { createBlobStore, type BlobStore } from '@dynasyn/storage';
import type { Redis } from 'ioredis';
import type { ApiConfig } from './config.js';
import { apiDb } from './db.js';
import type { ApiDeps } from './deps.js';
import type { Env } from './env.js';
import { apiQueues } from './queues.js';

export interface Services {
  deps: ApiDeps;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply pending migrations first (single-machine setups); production runs `dynasyn db migrate` instead. */
  migrate?: boolean;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export async function openServices(env: Env, opts: OpenOptions = {}): Promise<Services> {
  if (opts.migrate) await migrate(env.DATABASE_URL);
  const db = createDb(env.DATABASE_URL);
  const redis = await connectRedis(env.REDIS_URL, 'producer', opts.logger as never);
  // an outage is logged once and its recovery once, by the client and the queues alike (packages/queue)
  const set = createQueues({ connection: redis, prefix: env.QUEUE_PREFIX, ...(opts.logger ? { logger: opts.logger } : {}) });
  const storage = createBlobStore(env.STORAGE_URL, { s3: s3OptionsFrom(env) });
  // signed deliveries with retries, and the sweep that re-enqueues deliveries whose queue job was lost (packages/webhooks)
  const allow = webhookAllowList(env);
  if (allow.deprecation) opts.logger?.warn({ WEBHOOK_ALLOW_CIDRS: allow.cidrs.join(',') }, allow.deprecation);
  const webhookWorker = env.WEBHOOK_WORKER
    ? await startWebhookWorker(db, set, redisOptions(env.REDIS_URL, 'worker'), {
        allowCidrs: allow.cidrs,
        ...(opts.logger ? { logger: opts.logger } : {}),
      })
    : undefined;
  const deps = apiDeps(db, set, redis, storage);
  return {
    deps,
    async close() {
      await webhookWorker?.close();
      await closeQueues(set);
      redis.disconnect();
      await db.close();
    },
  };
}

/** The API's view of opened services, with the readiness probes /readyz runs. */
export function apiDeps(db: ReturnType<typeof createDb>, set: ReturnType<typeof createQueues>, redis: Redis, storage: BlobStore): ApiDeps {
  const api = apiDb(db);
  return {
    db: api,
    storage,
    queues: apiQueues(set, redis),
    redis,
    readiness: {
      db: () => api.ping(),
      redis: async () => {
        await redis.ping();
      },
      storage: async () => {
        await storage.head('readyz/probe');
      },
    },
  };
}

/**
 * The webhook allow-list of the environment, checked whole at start: an entry no list may open (link-local,
 * multicast, broadcast) is refused here, naming it, rather than ignored at the first delivery.
 */
export function webhookAllowList(env: Env): { cidrs: string[]; deprecation?: string } {
  const allow = webhookAllowCidrs(env);
  try {
    parseAllowCidrs(allow.cidrs);
  } catch (e) {
    throw new Error(`WEBHOOK_ALLOW_CIDRS: ${(e as Error).message}`);
  }
  return allow;
}

export function configFromEnv(env: Env): ApiConfig {
  const { cidrs } = webhookAllowList(env);
  return {
    maxUploadBytes: env.MAX_UPLOAD_BYTES,
    maxImagePixels: env.MAX_IMAGE_PIXELS,
    maxSubjects: env.MAX_SUBJECTS,
    rateLimitMax: env.RATE_LIMIT_MAX,
    rateLimitAddressMax: env.RATE_LIMIT_ADDRESS_MAX,
    rateLimitWindowMs: env.RATE_LIMIT_WINDOW_MS,
    webhookAllowCidrs: cidrs,
    webhookAllowPrivate: !isForbiddenAddress('127.0.0.1', { allowCidrs: cidrs }),
    stageLeaseSeconds: stageLeaseSeconds(env),
    ...(env.OPS_TOKEN ? { opsToken: env.OPS_TOKEN } : {}),
    ...(env.METRICS_TOKEN ? { metricsToken: env.METRICS_TOKEN } : {}),
    presignExpiresSeconds: env.PRESIGN_EXPIRES_SECONDS,
    docs: env.DOCS,
  };
}
