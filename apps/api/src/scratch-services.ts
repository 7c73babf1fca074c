/**
 * Throwaway services for the API's integration tests and its benchmark: a fresh migrated Postgres database, a
 * fresh BullMQ key prefix on a Redis, a temporary local-directory store, and the API's view of them (apiDeps).
 * `close` removes all of it. Shipped (not under testing/) because the benchmark runs from dist.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createDb, createScratchDatabase, migrate, type Db } from '@dynasyn/db';
import { closeQueues, connectRedis, createQueues, type QueueSet } from '@dynasyn/queue';
import { createBlobStore, type BlobStore } from '@dynasyn/storage';
import type { Redis } from 'ioredis';
import type { ApiDeps } from './deps.js';
import { apiDeps } from './services.js';

export interface ScratchServices {
  db: Db;
  redis: Redis;
  queues: QueueSet;
  storage: BlobStore;
  deps: ApiDeps;
  /** The BullMQ key prefix (also used to name rate-limit namespaces). */
  prefix: string;
  close(): Promise<void>;
}

export interface ScratchOptions {
  /** A Postgres URL with the right to create databases. */
  adminUrl: string;
  redisUrl: string;
  /** Names the database, the key prefix and the temp folder (`test-api`, `bench-api`). */
  label: string;
  maxConnections: number;
}

export async function openScratchServices(o: ScratchOptions): Promise<ScratchServices> {
  const scratch = await createScratchDatabase(o.adminUrl, `dynasyn_${o.label.replace(/-/g, '_')}`);
  await migrate(scratch.url);
  const db = createDb(scratch.url, { maxConnections: o.maxConnections });
  // the API's own producer connection (fails fast, outage logged once), as openServices opens it
  const redis = await connectRedis(o.redisUrl, 'producer');
  const prefix = `${o.label}-${randomBytes(4).toString('hex')}`;
  const queues = createQueues({ connection: redis, prefix });
  const dir = await mkdtemp(path.join(tmpdir(), `dynasyn-${o.label}-`));
  const storage = createBlobStore(`file://${dir}`);
  return {
    db,
    redis,
    queues,
    storage,
    prefix,
    deps: apiDeps(db, queues, redis, storage),
    async close() {
      await closeQueues(queues);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await db.close();
      await scratch.drop();
      // a request whose client hung up (autocannon's last ones) may still be writing blobs after the server
      // closed: rm retries the walk until those writes are done
      await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}
