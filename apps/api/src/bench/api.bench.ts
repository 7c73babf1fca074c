/**
 * API throughput and latency on loopback (autocannon): GET /healthz (the framework floor), GET of one
 * personalization (auth + a Postgres read + artifact links), GET of its samples, and POST of a new
 * personalization (multipart parse, image/mask decode, two blob writes, a row, the flow enqueued in Redis).
 *
 *   npm run bench -w @dynasyn/api                     # starts its own app on real services (below)
 *   node dist/bench/api.bench.js --url http://127.0.0.1:3000 --key dsk_...   # against a running server
 *
 * Own app: a scratch database on BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * Redis at BENCH_REDIS_URL (default redis://127.0.0.1:6379, a fresh prefix, removed after), a temp local store.
 * Options: --duration s (default 10), --connections n (default 10), --post-connections n (default 4).
 */
import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import { DEFAULT_CONFIG } from '../config.js';
import { openScratchServices } from '../scratch-services.js';
import { buildServer } from '../server.js';
import { file, multipart, pngImage, pngMask } from './upload-fixtures.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
    'post-connections': { type: 'string', default: '4' },
  },
});

interface Target {
  url: string;
  apiKey: string;
  stop(): Promise<void>;
}

async function ownApp(): Promise<Target> {
  const services = await openScratchServices({
    adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    label: 'bench-api',
    maxConnections: 10,
  });
  const server = buildServer({
    deps: services.deps,
    // The bench measures the API, not the limiter refusing it.
    config: { ...DEFAULT_CONFIG, rateLimitMax: 1e9 },
    rateLimitNamespace: `${services.prefix}-rl:`,
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const { apiKey } = await services.db.tenants.create('bench');
  return {
    url,
    apiKey,
    async stop() {
      await server.close();
      await services.close();
    },
  };
}

function row(name: string, r: Result, connections: number) {
  return {
    endpoint: name,
    connections,
    'req/s': Math.round(r.requests.average),
    'p50 ms': r.latency.p50,
    'p97.5 ms': r.latency.p97_5,
    'p99 ms': r.latency.p99,
    'max ms': r.latency.max,
    requests: r.requests.total,
    'non-2xx': r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

async function main() {
  const duration = Number(args.duration);
  const connections = Number(args.connections);
  const postConnections = Number(args['post-connections']);
  const target: Target = args.url ? { url: args.url.replace(/\/$/, ''), apiKey: args.key ?? '', stop: async () => undefined } : await ownApp();
  if (!target.apiKey) throw new Error('--key <api key> is required with --url');
  try {
    const auth = { authorization: `Bearer ${target.apiKey}` };
    const upload = multipart([file('image', await pngImage(64, 64)), file('mask', await pngMask(64, 64)), { name: 'classes', value: 'ball' }]);
    const created = await fetch(`${target.url}/v1/personalizations`, { method: 'POST', headers: { ...upload.headers, ...auth }, body: upload.payload });
    if (created.status !== 202) throw new Error(`POST /v1/personalizations answered ${created.status}: ${await created.text()}`);
    const { id } = (await created.json()) as { id: string };

    const runs: [string, Parameters<typeof autocannon>[0]][] = [
      ['GET /healthz', { url: `${target.url}/healthz`, connections, duration }],
      ['GET /v1/personalizations/:id', { url: `${target.url}/v1/personalizations/${id}`, headers: auth, connections, duration }],
      ['GET /v1/samples?personalization=', { url: `${target.url}/v1/samples?personalization=${id}`, headers: auth, connections, duration }],
      [
        'POST /v1/personalizations (64x64)',
        {
          url: `${target.url}/v1/personalizations`,
          method: 'POST',
          headers: { ...upload.headers, ...auth },
          body: upload.payload,
          connections: postConnections,
          duration,
        },
      ],
    ];
    const rows = [];
    for (const [name, opts] of runs) {
      const r = await autocannon(opts);
      rows.push(row(name, r, opts.connections ?? 1));
    }
    console.log(`API on ${target.url} (loopback), ${duration} s per endpoint`);
    console.table(rows);
  } finally {
    await target.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
