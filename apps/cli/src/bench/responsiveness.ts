/**
 * Issue 12 §3: does `dynasyn serve`'s API stay responsive while a job trains? On one serve with every worker
 * (each in its own process), the API's latency is measured twice, the same way:
 *  - idle: the workers up, no job running;
 *  - training: while one tiny-bundle personalization is in its `training` stage (checked before and after).
 * Each time: GET /v1/personalizations/:id at a steady rate (autocannon, `overallRate`; a client polling status,
 * not a throughput test) and `creates` sequential POST /v1/personalizations, each canceled at once so that no
 * second job trains (their augment may start before the cancel lands: a little extra load, said in the output).
 * Also the API process's own event-loop lag over the GET window (p99 and max), from prom-client's gauges on
 * /metrics (reset at each scrape), where the API serves them (METRICS_TOKEN).
 */
import os from 'node:os';
import autocannon from 'autocannon';
import { freePort } from '../e2e/services.js';
import { startServe, waitUntil } from '../e2e/processes.js';
import { ApiClient, type Personalization, type Upload } from '../e2e/api-client.js';

export interface ResponsivenessOptions {
  env: Record<string, string>;
  work: string;
  apiKey: string;
  upload: Upload;
  seconds: number;
  /** Steady GET rate (requests per second over 4 connections). */
  rate?: number;
  /** Sequential creates per phase. */
  creates?: number;
}

interface Figures {
  /** The API process's event-loop lag during the GET window, ms (undefined where /metrics is not served). */
  lag?: { p99: number; max: number };
  get: { p50: number; p99: number; max: number; n: number; errors: number };
  create: { p50: number; p99: number; max: number; n: number };
  load: string;
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const ms = (x: number) => `${x.toFixed(0).padStart(5)} ms`;

const ENDED = ['succeeded', 'failed', 'canceled'];

/** GETs at a steady rate, then sequential creates (each canceled at once); waits until those creates ended. */
const METRICS_TOKEN = 'bench-metrics-token';

/** The API's event-loop lag gauges since the previous scrape (prom-client resets them at each), in ms. */
async function eventLoopLag(api: ApiClient): Promise<{ p99: number; max: number } | undefined> {
  const r = await fetch(`${api.baseUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  if (!r.ok) return undefined;
  const text = await r.text();
  const gauge = (name: string) => Number(new RegExp(`^\\w*nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1]) * 1000;
  const lag = { p99: gauge('p99'), max: gauge('max') };
  return Number.isFinite(lag.p99) ? lag : undefined;
}

async function measure(api: ApiClient, id: string, o: Required<ResponsivenessOptions>): Promise<Figures> {
  const loadBefore = load();
  await eventLoopLag(api);
  const r = await autocannon({
    url: `${api.baseUrl}/v1/personalizations/${id}`,
    connections: 4,
    overallRate: o.rate,
    duration: o.seconds,
    headers: { authorization: `Bearer ${api.apiKey}` },
  });
  const lag = await eventLoopLag(api);
  const took: number[] = [];
  const created: string[] = [];
  for (let i = 0; i < o.creates; i++) {
    const t0 = performance.now();
    const c = await api.createPersonalization(o.upload);
    took.push(performance.now() - t0);
    if (c.status !== 202) throw new Error(`create answered ${c.status}: ${JSON.stringify(c.body)}`);
    created.push(c.body.id);
    await api.cancel(c.body.id);
  }
  const loadAfter = load();
  for (const c of created) await ended(api, c);
  return {
    ...(lag ? { lag } : {}),
    get: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, n: r['2xx'], errors: r.errors + r.non2xx },
    create: { p50: pct(took, 50), p99: pct(took, 99), max: Math.max(...took), n: took.length },
    load: `${loadBefore} -> ${loadAfter}`,
  };
}

const ended = (api: ApiClient, id: string) =>
  waitUntil(`job ${id} to end`, async () => (ENDED.includes((await api.get(id)).body.status) ? true : undefined), 300_000, 250);

/** Runs both phases on a fresh serve and prints the figures; resolves with them. */
export async function benchResponsiveness(opts: ResponsivenessOptions): Promise<{ idle: Figures; training: Figures }> {
  const o: Required<ResponsivenessOptions> = { rate: 10, creates: 8, ...opts };
  const serve = await startServe({ ...o.env, QUEUE_PREFIX: `${o.env.QUEUE_PREFIX}r`, METRICS_TOKEN }, await freePort(), o.work);
  try {
    const api = new ApiClient(serve.baseUrl, o.apiKey);
    // idle: a job to read, canceled before any stage work, so that nothing runs
    const first = await api.createPersonalization(o.upload);
    if (first.status !== 202) throw new Error(`create answered ${first.status}: ${JSON.stringify(first.body)}`);
    await api.cancel(first.body.id);
    await ended(api, first.body.id);
    const idle = await measure(api, first.body.id, o);

    // training: a long tiny-bundle job, measured once it has taken training steps
    const job = await api.createPersonalization({ ...o.upload, options: { preset: 'tiny', steps: 400 } });
    const jobId = job.body.id;
    const inTraining = (p: Personalization) => p.status === 'training' && p.progress.some((s) => /train|phase/i.test(s.stage) && s.step >= 1);
    await waitUntil(
      'the job to train',
      async () => {
        const p = (await api.get(jobId)).body;
        if (ENDED.includes(p.status)) throw new Error(`job ended ${p.status}`);
        return inTraining(p) ? p : undefined;
      },
      600_000,
      500,
    );
    const training = await measure(api, jobId, o);
    const after = (await api.get(jobId)).body;
    await api.cancel(jobId);

    const row = (name: string, f: Figures) =>
      `${name.padEnd(9)} GET p50 ${ms(f.get.p50)} p99 ${ms(f.get.p99)} max ${ms(f.get.max)} (${f.get.n} ok, ${f.get.errors} errors)   create p50 ${ms(f.create.p50)} p99 ${ms(f.create.p99)} max ${ms(f.create.max)} (${f.create.n})   API event-loop lag ${f.lag ? `p99 ${ms(f.lag.p99)} max ${ms(f.lag.max)}` : 'n/a'}   load ${f.load}`;
    console.log(
      `# API latency under dynasyn serve (each worker its own process): GET at ${o.rate} req/s for ${o.seconds} s, then ${o.creates} creates (each canceled at once)`,
    );
    console.log(row('idle', idle));
    console.log(row('training', training));
    console.log(
      `still training after the window: ${after.status === 'training' ? 'yes' : `no (${after.status})`}; p99 training/idle: GET ${(training.get.p99 / idle.get.p99).toFixed(2)}x, create ${(training.create.p99 / idle.create.p99).toFixed(2)}x`,
    );
    return { idle, training };
  } finally {
    await serve.stop(30_000);
  }
}
