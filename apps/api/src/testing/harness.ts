/**
 * The API against real services for integration tests: a fresh Postgres database (migrated), a fresh BullMQ
 * prefix on the local Redis, a temporary local-directory store, and tenants with API keys.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { deflateSync, crc32 } from 'node:zlib';
import { createDb, createScratchDatabase, migrate, type Db } from '@dynasyn/db';
import { encodePng, type RgbImage } from '@dynasyn/imaging';
import { closeQueues, createQueues, type QueueSet } from '@dynasyn/queue';
import { createBlobStore, type BlobStore } from '@dynasyn/storage';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { DEFAULT_CONFIG, type ApiConfig } from '../config.js';
import { apiDb } from '../db.js';
import type { ApiDeps } from '../deps.js';
import { apiQueues } from '../queues.js';
import { buildServer } from '../server.js';

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const OPS_TOKEN = 'test-ops-token-0123456789';

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
  const scratch = await createScratchDatabase(ADMIN_DATABASE_URL, 'dynasyn_api_test');
  await migrate(scratch.url);
  const db = createDb(scratch.url, { maxConnections: 4 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const prefix = `test-api-${randomBytes(4).toString('hex')}`;
  const queues = createQueues({ connection: redis, prefix });
  const dir = await mkdtemp(path.join(tmpdir(), 'dynasyn-api-'));
  const storage = createBlobStore(`file://${dir}`);
  const api = apiDb(db);
  const deps: ApiDeps = {
    db: api,
    storage,
    queues: apiQueues(queues, redis),
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
  const servers: FastifyInstance[] = [];
  const serverWith = (overrides: Partial<ApiConfig>) => {
    const s = buildServer({
      deps,
      config: { ...DEFAULT_CONFIG, opsToken: OPS_TOKEN, ...config, ...overrides },
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
      await closeQueues(queues);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await db.close();
      await scratch.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A tenant and its API key, as `Authorization` headers. */
export async function createTenant(db: Db, name: string): Promise<{ id: string; auth: { authorization: string } }> {
  const { tenant, apiKey } = await db.tenants.create(name);
  return { id: tenant.id, auth: { authorization: `Bearer ${apiKey}` } };
}

export type Part =
  | { name: string; value: string }
  | { name: string; filename: string; contentType: string; data: Uint8Array };

/** A multipart/form-data body for `inject`. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----dynasyn${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('data' in p) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.contentType}\r\n\r\n`));
      chunks.push(Buffer.from(p.data), Buffer.from('\r\n'));
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** A w x h photo-ish RGB image (a gradient) and a mask with a filled rectangle, as PNG bytes. */
export async function pngImage(w: number, h: number): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[3 * i] = (i % w) * 4;
    data[3 * i + 1] = Math.floor(i / w) * 4;
    data[3 * i + 2] = 128;
  }
  return encodePng({ width: w, height: h, data } as RgbImage);
}

export async function pngMask(w: number, h: number, box = { x: 0, y: 0, width: Math.ceil(w / 2), height: Math.ceil(h / 2) }): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let y = box.y; y < box.y + box.height; y++) for (let x = box.x; x < box.x + box.width; x++) data.fill(255, 3 * (y * w + x), 3 * (y * w + x) + 3);
  return encodePng({ width: w, height: h, data } as RgbImage);
}

/** A PNG whose header claims width x height but carries no pixels: decoders must refuse it from the header. */
export function pngHeaderOnly(width: number, height: number): Uint8Array {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const file = (name: string, data: Uint8Array, contentType = 'image/png'): Part => ({ name, filename: `${name}.png`, contentType, data });
