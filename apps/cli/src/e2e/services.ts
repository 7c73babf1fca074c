/**
 * Real services for the end-to-end tests: a fresh Postgres database, a fresh Redis key prefix and an
 * in-process s3rver on a random port, each with a cleanup that leaves nothing behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import S3rver from 's3rver';

const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = 'redis://127.0.0.1:6379';

/** Environment for `dynasyn serve` and `dynasyn tenants create` pointing at these services. */
export interface ServiceTestEnv {
  DATABASE_URL: string;
  REDIS_URL: string;
  QUEUE_PREFIX: string;
  STORAGE_URL: string;
  S3_ENDPOINT: string;
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_REGION: string;
  WEBHOOK_ALLOW_CIDRS: string;
  [name: string]: string;
}

export interface TestServices {
  env: ServiceTestEnv;
  databaseUrl: string;
  bucket: string;
  s3Dir: string;
  query<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** A free loopback TCP port (tiny race window between close and reuse, acceptable in tests). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export async function startServices(): Promise<TestServices> {
  const tag = `e2e_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${tag}"`);
  await admin.end();
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${tag}`;
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });

  const s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-e2e-s3-'));
  const bucket = 'dynasyn-e2e';
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3Dir, configureBuckets: [{ name: bucket }] });
  const { port: s3Port } = await s3.run();

  const env: ServiceTestEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: tag,
    STORAGE_URL: `s3://${bucket}/e2e`,
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
  };
  return {
    env,
    databaseUrl,
    bucket,
    s3Dir,
    query: async (sql, params) => (await db.query(sql, params)).rows,
    close: async () => {
      await db.end();
      await s3.close().catch(() => undefined);
      fs.rmSync(s3Dir, { recursive: true, force: true });
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${tag}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** Every object key in the s3rver bucket (s3rver keeps objects as files under `<dir>/<bucket>/<key>._S3rver_object`). */
export function listBlobKeys(s3Dir: string, bucket: string): string[] {
  const root = path.join(s3Dir, bucket);
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('._S3rver_object')) out.push(path.relative(root, p).slice(0, -'._S3rver_object'.length));
    }
  };
  walk(root);
  return out.sort();
}
