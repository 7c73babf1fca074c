/**
 * The API against real services for integration tests: a fresh Postgres database (migrated), a fresh BullMQ
 * prefix on the local Redis, a temporary local-directory store, and tenants with API keys.
 */
import type { Db } from '@dynasyn/db';
import type { QueueSet } from '@dynasyn/queue';
import type { BlobStore } from '@dynasyn/storage';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { DEFAULT_CONFIG, type ApiConfig } from '../config.js';
import type { ApiDeps } from '../deps.js';
import { openScratchServices } from '../scratch-services.js';
import { buildServer } from '../server.js';

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const OPS_TOKEN = 'test-ops-token-0123456789';
export const METRICS_TOKEN = 'test-metrics-token-0123456789';

export interface Harness {
  server: FastifyInstance;
  db: Db;
  storage: BlobStore;
  queues: QueueSet;
  redis: Redis;
  deps: ApiDeps;
  prefix: string;
  /** Builds another server on the same services (other config). */
  serverWith(config: Partial<ApiConfig>): FastifyInstance;
  close(): Promise<void>;
}

export async function startHarness(config: Partial<ApiConfig> = {}): Promise<Harness> {
  const services = await openScratchServices({ adminUrl: ADMIN_DATABASE_URL, redisUrl: REDIS_URL, label: 'test-api', maxConnections: 4 });
  const { db, storage, queues, redis, deps, prefix } = services;
  const servers: FastifyInstance[] = [];
  const serverWith = (overrides: Partial<ApiConfig>) => {
    const s = buildServer({
      deps,
      config: { ...DEFAULT_CONFIG, opsToken: OPS_TOKEN, metricsToken: METRICS_TOKEN, ...config, ...overrides },
      rateLimitNamespace: `${prefix}-rl-${servers.length}:`,
    });
    servers.push(s);
    return s;
  };
  const server = serverWith({});
  await server.ready();
  return {
    server,
    db,
    storage,
    queues,
    redis,
    deps,
    prefix,
    serverWith,
    async close() {
      for (const s of servers) await s.close();
      await services.close();
    },
  };
}

/** A tenant and its API key, as `Authorization` headers. */
export async function createTenant(db: Db, name: string): Promise<{ id: string; auth: { authorization: string } }> {
  const { tenant, apiKey } = await db.tenants.create(name);
  return { id: tenant.id, auth: { authorization: `Bearer ${apiKey}` } };
}

export { file, multipart, pngHeaderOnly, pngImage, pngMask, type Part } from '../bench/upload-fixtures.js';
