/**
 * The API PROCESS killed with SIGKILL while a multipart create's body is still arriving: the upload is read into
 * memory and checked before anything is stored (upload.ts), so the interrupted request leaves no row, no
 * Idempotency-Key record, no job and no file (in storage, its `.tmp-*` files included, or in the process's
 * TMPDIR). A new process on the same database, storage and queue prefix then takes the whole request with the
 * same key: 202, one row, one flow; sent once more it is replayed. Runs the built app (`npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createDb, createScratchDatabase, migrate, type Db, type ScratchDatabase } from '@dynasyn/db';
import { closeQueues, connectRedis, createQueues, personalizationStages, type QueueSet } from '@dynasyn/queue';
import type { Redis } from 'ioredis';
import { waitFor } from '../../../packages/queue/src/testing/wait.js';
import { ADMIN_DATABASE_URL, REDIS_URL, createTenant, file, multipart, pngImage, pngMask } from './testing/harness.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js');
const PREFIX = `restart-upload-${process.pid}-${Date.now()}`;
const KEY = 'restart-mid-upload-1';

let scratch: ScratchDatabase;
let db: Db;
let redis: Redis;
let queues: QueueSet;
let storageDir: string;
let apiTmp: string;
let port: number;
const children: ChildProcess[] = [];

interface ApiProcess {
  child: ChildProcess;
  exited: Promise<void>;
  log(): string;
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  scratch = await createScratchDatabase(ADMIN_DATABASE_URL, 'dynasyn_test_restart_upload');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 2 });
  redis = await connectRedis(REDIS_URL, 'producer');
  queues = createQueues({ connection: redis, prefix: PREFIX });
  storageDir = await mkdtemp(path.join(tmpdir(), 'dynasyn-restart-upload-storage-'));
  apiTmp = await mkdtemp(path.join(tmpdir(), 'dynasyn-restart-upload-tmp-'));
  port = await freePort();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (queues) await closeQueues(queues);
  if (redis) {
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  await db?.close();
  await scratch?.drop();
  for (const dir of [storageDir, apiTmp]) if (dir) await rm(dir, { recursive: true, force: true });
});

/** `node apps/api/dist/index.js` on the test's database, storage, queue prefix and port; its TMPDIR a folder of its own. */
function startApi(): ApiProcess {
  let out = '';
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      TMPDIR: apiTmp,
      DATABASE_URL: scratch.url,
      REDIS_URL,
      QUEUE_PREFIX: PREFIX,
      STORAGE_URL: `file://${storageDir}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      DOCS: 'false',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  children.push(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, log: () => out };
}

async function kill9(api: ApiProcess): Promise<void> {
  api.child.kill('SIGKILL');
  await api.exited;
}

/** Throws with the process's log once it has exited (a crash at start fails the test at once, not by timeout). */
function assertRunning(api: ApiProcess): void {
  if (api.child.exitCode !== null || api.child.signalCode !== null) {
    throw new Error(`the API exited (${api.child.exitCode ?? api.child.signalCode}):\n${api.log().slice(-4000)}`);
  }
}

async function waitReady(api: ApiProcess): Promise<void> {
  await waitFor(
    'the API to answer /readyz 200',
    async () => {
      assertRunning(api);
      return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200;
    },
    60_000,
  );
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const p = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return p;
}

/** Every file under `dir`, relative, hidden ones (the local store's `.tmp-*`, `.meta`, `.trash/`) included. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Every job of every queue under the prefix, but the webhook sweep's scheduled runs (the API's own, not a request's). */
async function requestJobs() {
  const all = await Promise.all(Object.values(queues.queues).map(async (q) => (await q.getJobs()).map((j) => ({ queue: q.name, job: j }))));
  return all.flat().filter(({ job }) => job.name !== 'webhook.sweep');
}

/** What a create stores, counted independently of the API's code. */
async function footprint() {
  return {
    rows: await db.prisma.personalization.count(),
    idempotencyRecords: await db.prisma.idempotencyKey.count(),
    jobs: (await requestJobs()).length,
    storageFiles: await filesUnder(storageDir),
    tmpFiles: await filesUnder(apiTmp),
  };
}

it('an API killed mid-upload leaves nothing; after a restart the same request with the same key creates exactly one personalization and one flow', async () => {
  const tenant = await createTenant(db, 'restart');
  const image = await pngImage(64, 64);
  const body = multipart([
    file('image', image),
    file('mask', await pngMask(64, 64)),
    { name: 'classes', value: 'dog' },
    { name: 'options', value: '{"preset":"tiny"}' },
  ]);
  const headers = { ...body.headers, ...tenant.auth, 'idempotency-key': KEY };

  const first = startApi();
  await waitReady(first);

  // Headers and the body up to the middle of the image; the rest never comes.
  const cut = body.payload.indexOf(Buffer.from(image)) + Math.floor(image.length / 2);
  const slow = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/personalizations',
    headers: { ...headers, 'content-length': String(body.payload.length) },
  });
  const outcome = new Promise<string>((resolve) => {
    slow.once('response', (res) => resolve(`answered ${res.statusCode}`));
    slow.once('error', (err: NodeJS.ErrnoException) => resolve(`failed ${err.code ?? err.message}`));
  });
  await new Promise<void>((resolve, reject) => slow.write(body.payload.subarray(0, cut), (err) => (err ? reject(err) : resolve())));
  // In the handler, reading the body: the per-key rate limit (a route hook, after the auth hook, the last await
  // before the handler) has counted the request in Redis; then a /readyz answered, whose PING went on the same
  // Redis connection after that count, so the API has had the count's reply and run on into the handler.
  await waitFor(
    'the API to authenticate and count the slow request',
    async () => {
      assertRunning(first);
      return (await redis.keys(`${PREFIX}-rl:*key:*`)).length > 0;
    },
    15_000,
  );
  await waitReady(first);
  await kill9(first);
  // The client never got an answer: this request was not accepted, so it must leave nothing.
  expect(await outcome).toMatch(/^failed /);
  expect(await footprint()).toEqual({ rows: 0, idempotencyRecords: 0, jobs: 0, storageFiles: [], tmpFiles: [] });

  const restartedAt = Date.now();
  const second = startApi();
  await waitReady(second);
  const readyMs = Date.now() - restartedAt;
  // the new process touches nothing of the interrupted request at start either
  expect(await footprint()).toEqual({ rows: 0, idempotencyRecords: 0, jobs: 0, storageFiles: [], tmpFiles: [] });

  const send = () => fetch(`http://127.0.0.1:${port}/v1/personalizations`, { method: 'POST', headers, body: body.payload });
  const createStartedAt = Date.now();
  const created = await send();
  const createMs = Date.now() - createStartedAt;
  const createdBody = (await created.json()) as { id: string; status: string };
  expect({ status: created.status, replayed: created.headers.get('idempotent-replayed') }).toEqual({ status: 202, replayed: null });
  const id = createdBody.id;
  expect(createdBody.status).toBe('queued');

  // Sent once more with the key: the first answer, no second row or flow.
  const again = await send();
  expect({ status: again.status, replayed: again.headers.get('idempotent-replayed'), body: await again.json() }).toEqual({
    status: 202,
    replayed: 'true',
    body: createdBody,
  });

  const rows = await db.prisma.personalization.findMany({ select: { id: true, status: true } });
  const records = await db.prisma.idempotencyKey.findMany({ select: { key: true, personalizationId: true } });
  const jobs = (await requestJobs()).map(({ queue, job }) => ({ queue, personalizationId: (job.data as { personalizationId: string }).personalizationId }));
  const firstStage = jobs.filter((j) => j.queue === 'augment');
  // figures before the assertions, so a failing run shows them too
  const accepted = created.status === 202 && created.headers.get('idempotent-replayed') === null ? 1 : 0;
  const completed = rows.filter((r) => r.status === 'queued' && firstStage.some((j) => j.personalizationId === r.id)).length;
  const duplicated = Math.max(0, rows.length - 1) + Math.max(0, firstStage.length - 1);
  console.log(
    `API restart mid-upload: interrupted 1 (no answer), accepted ${accepted}, completed ${completed} (row + queued flow), duplicated ${duplicated}, ` +
      `lost ${accepted - completed}; restart to first successful create ${readyMs + createMs} ms (ready ${readyMs} ms + create ${createMs} ms)`,
  );

  expect(rows).toEqual([{ id, status: 'queued' }]);
  expect(records).toEqual([{ key: KEY, personalizationId: id }]);
  // one flow: a job per stage, all for this personalization, the first stage waiting for a worker
  const byQueue = (a: { queue: string }, b: { queue: string }) => a.queue.localeCompare(b.queue);
  expect(jobs.sort(byQueue)).toEqual(personalizationStages.map((s) => ({ queue: s.queue, personalizationId: id })).sort(byQueue));
  expect(await queues.queues.augment.getJobCounts('waiting', 'prioritized')).toEqual({ waiting: 1, prioritized: 0 });
  // the new personalization's inputs and their content-type sidecars (local store's `.meta/`), nothing else
  const input = `tenants/${tenant.id}/personalizations/${id}/input`;
  expect(await filesUnder(storageDir)).toEqual([
    `.meta/${input}/image.png.json`,
    `.meta/${input}/mask-0.png.json`,
    `${input}/image.png`,
    `${input}/mask-0.png`,
  ]);
  expect(await filesUnder(apiTmp)).toEqual([]);
  assertRunning(second);
  await kill9(second);
});
