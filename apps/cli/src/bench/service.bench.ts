/**
 * Service benchmark (issue 5 "Proof"): `dynasyn serve` (built dist) against real Postgres, Redis and s3rver.
 *  1. API throughput and latency on loopback (autocannon): GET /v1/personalizations/:id and
 *     POST /v1/personalizations (multipart, the example input), with the workers off (WORKERS=none) so the
 *     figures are the API's alone.
 *  2. Enqueue-to-start latency per stage, from BullMQ job timestamps (processedOn - timestamp) of one tiny
 *     personalization run by a second serve with every worker.
 *  3. Jobs per second through an empty stage: a no-op BullMQ worker on a test queue.
 *  4. The API's latency (GET by id, create) idle and while one tiny job trains, on a serve with every worker
 *     (responsiveness.ts; issue 12 §3).
 * Run: npm run build && node apps/cli/dist/bench/service.bench.js  (env BENCH_SECONDS, default 10; BENCH_SECTIONS,
 * a comma list of api, stages, empty, training, default all)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { redisOptions } from '@dynasyn/queue';
import { createExampleInput } from '@dynasyn/dynasyn';
import { freePort, startServices, type ServiceTestEnv } from '../e2e/services.js';
import { createTenant, runCli, startServe, waitUntil } from '../e2e/processes.js';
import { ApiClient, readFile } from '../e2e/api-client.js';
import { benchResponsiveness } from './responsiveness.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const sections = new Set((process.env.BENCH_SECTIONS ?? 'api,stages,empty,training').split(',').map((x) => x.trim()));
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function multipartBody(image: Buffer, masks: Buffer[], classes: string): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  form.append('image', new Blob([image], { type: 'image/png' }), 'image.png');
  for (const [i, m] of masks.entries()) form.append('mask', new Blob([m], { type: 'image/png' }), `mask${i}.png`);
  form.append('classes', classes);
  form.append('options', JSON.stringify({ preset: 'tiny' }));
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), contentType: req.headers.get('content-type')! };
}

function line(name: string, r: Result) {
  console.log(
    `${name.padEnd(32)} ${r.requests.average.toFixed(0).padStart(6)} req/s  latency p50 ${ms(r.latency.p50)} p99 ${ms(r.latency.p99)} max ${ms(r.latency.max)}  2xx ${r['2xx']} non-2xx ${r.non2xx} errors ${r.errors}`,
  );
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-bench-'));
  const services = await startServices();
  const cleanups: (() => Promise<void>)[] = [async () => services.close(), async () => fs.rmSync(work, { recursive: true, force: true })];
  try {
    if (runCli({}, work, 'bundle', 'create-tiny', 'tiny').status !== 0) throw new Error('bundle create-tiny failed');
    const env = { ...services.env, BACKBONE: path.join(work, 'tiny'), RATE_LIMIT_MAX: '100000000', LOG_LEVEL: 'warn' };
    const ex = await createExampleInput(path.join(work, 'example'));
    const image = readFile(ex.image);
    const masks = ex.masks.map(readFile);
    const classes = ex.classWords.join(',');
    console.log(
      `# dynasyn service bench: ${os.cpus().length} cores, ${seconds} s per run, loopback, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );

    const key = createTenant(env, work, 'bench');
    if (sections.has('api')) await benchApi(env, work, key, image, masks, classes, cleanups);
    if (sections.has('stages')) await benchStages(env, work, key, image, masks, classes, cleanups);
    if (sections.has('empty')) await benchEmptyStage(env, cleanups);
    if (sections.has('training'))
      await benchResponsiveness({ env, work, apiKey: key, upload: { image, masks, classes, options: { preset: 'tiny' } }, seconds });
  } finally {
    for (const c of cleanups) await c().catch((e: unknown) => console.error('cleanup:', e));
  }
}

type Cleanups = (() => Promise<void>)[];

/** 1. The API alone (WORKERS=none): GET by id, /healthz and POST at full speed. */
async function benchApi(env: ServiceTestEnv, work: string, key: string, image: Buffer, masks: Buffer[], classes: string, cleanups: Cleanups) {
  const apiServe = await startServe({ ...env, WORKERS: 'none' }, await freePort(), work);
  cleanups.unshift(() => apiServe.stop());
  const api = new ApiClient(apiServe.baseUrl, key);
  const created = await api.createPersonalization({ image, masks, classes, options: { preset: 'tiny' } });
  if (created.status !== 202) throw new Error(`POST failed: ${created.status} ${JSON.stringify(created.body)}`);
  const auth = { authorization: `Bearer ${key}` };
  line(
    'GET /v1/personalizations/:id',
    await autocannon({ url: `${apiServe.baseUrl}/v1/personalizations/${created.body.id}`, connections: 16, duration: seconds, headers: auth }),
  );
  line('GET /healthz', await autocannon({ url: `${apiServe.baseUrl}/healthz`, connections: 16, duration: seconds }));
  const mp = await multipartBody(image, masks, classes);
  console.log(`POST body: ${(mp.body.length / 1024).toFixed(1)} KiB multipart (image ${image.length} B + ${masks.length} masks)`);
  line(
    'POST /v1/personalizations',
    await autocannon({
      url: `${apiServe.baseUrl}/v1/personalizations`,
      method: 'POST',
      connections: 8,
      duration: seconds,
      headers: { ...auth, 'content-type': mp.contentType },
      body: mp.body,
    }),
  );
  await apiServe.stop();
  cleanups.shift();
}

/** 2. Enqueue-to-start per stage of one tiny personalization. */
async function benchStages(env: ServiceTestEnv, work: string, key: string, image: Buffer, masks: Buffer[], classes: string, cleanups: Cleanups) {
  // 2. enqueue-to-start per stage: a fresh prefix, one personalization through every worker
  const stageEnv = { ...env, QUEUE_PREFIX: `${env.QUEUE_PREFIX}s` };
  const full = await startServe(stageEnv, await freePort(), work);
  cleanups.unshift(() => full.stop());
  const c2 = new ApiClient(full.baseUrl, key);
  const {
    body: { id },
  } = await c2.createPersonalization({ image, masks, classes, options: { preset: 'tiny' } });
  const t0 = Date.now();
  await waitUntil(
    'personalization',
    async () => {
      const p = (await c2.get(id)).body;
      if (p.status === 'failed' || p.status === 'canceled') throw new Error(p.status);
      return p.status === 'succeeded' ? p : undefined;
    },
    600_000,
    500,
  );
  console.log(`one tiny personalization end to end: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const connection = new Redis(redisOptions(env.REDIS_URL, 'worker'));
  cleanups.unshift(async () => {
    connection.disconnect();
  });
  // In a flow every job is added at once and a parent waits for its child: the stage's own queueing delay
  // is from the moment it became runnable (the previous stage finished) to its start.
  let readyAt: number | undefined;
  for (const name of ['augment', 'gsa', 'train', 'sample']) {
    const q = new Queue(name, { connection, prefix: stageEnv.QUEUE_PREFIX });
    const job = (await q.getJobs(['completed', 'failed'])).find((j) => j.name.startsWith('personalization.') && j.processedOn);
    await q.close();
    if (!job) {
      console.log(`stage ${name.padEnd(8)} no job found`);
      continue;
    }
    const runnable = Math.max(job.timestamp, readyAt ?? job.timestamp);
    console.log(
      `stage ${name.padEnd(8)} enqueue-to-start ${ms(job.processedOn! - runnable)} (from flow creation ${ms(job.processedOn! - job.timestamp)})  run ${ms(job.finishedOn! - job.processedOn!)}`,
    );
    readyAt = job.finishedOn!;
  }
  await full.stop();
  cleanups.shift();
  connection.disconnect();
  cleanups.shift();
}

/** 3. Jobs per second through a no-op worker. */
async function benchEmptyStage(env: ServiceTestEnv, cleanups: Cleanups) {
  // 3. an empty stage: jobs/s through a no-op worker
  const connection = new Redis(redisOptions(env.REDIS_URL, 'worker'));
  cleanups.unshift(async () => {
    connection.disconnect();
  });
  const prefix = `${env.QUEUE_PREFIX}e`;
  const q = new Queue('bench-empty', { connection, prefix });
  const n = 5000;
  for (const concurrency of [1, 16]) {
    await q.obliterate({ force: true });
    await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } })));
    let done = 0;
    const start = performance.now();
    const finished = new Promise<void>((resolve) => {
      const w = new Worker('bench-empty', async () => undefined, { connection, prefix, concurrency });
      w.on('completed', () => {
        if (++done === n) {
          void w.close().then(resolve);
        }
      });
    });
    await finished;
    const s = (performance.now() - start) / 1000;
    console.log(`empty stage, concurrency ${String(concurrency).padStart(2)}: ${(n / s).toFixed(0)} jobs/s (${n} jobs in ${s.toFixed(2)} s)`);
  }
  await q.obliterate({ force: true });
  await q.close();
}

await main();
