/**
 * Prometheus metrics on a registry of this app's own (several apps can live in one process): HTTP request
 * durations by route, queue gauges read from queue health at scrape time, and what Postgres knows of the work
 * (by status, stuck past the stage lease, recoveries, webhook deliveries), read at scrape time too.
 * /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; without a token configured it is not served.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { prometheusMetrics } from '@dynasyn/queue';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ApiQueues, WorkSnapshot } from '../deps.js';
import { Unauthorized } from '../errors.js';
import { bearer } from './auth.js';

export interface MetricsOptions {
  queues: ApiQueues;
  /** What Postgres knows of the work; undefined: no such gauges. */
  work?: () => Promise<WorkSnapshot>;
  /** Bearer token Prometheus scrapes with; undefined: /metrics is not served (the histograms still run). */
  token?: string;
}

export function installMetrics(app: FastifyInstance, o: MetricsOptions): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'dynasyn_api_' });
  const http = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request durations by method, route and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    // Unmatched routes share one label: raw URLs would blow up the label cardinality.
    const route = request.routeOptions.url ?? 'unmatched';
    http.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  if (!o.token) return registry;

  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = digest(o.token);
  app.get(
    '/metrics',
    {
      schema: { hide: true },
      onRequest: async (request) => {
        const given = bearer(request);
        if (!given || !timingSafeEqual(digest(given), expected)) throw new Unauthorized();
      },
    },
    async (_request, reply) => {
      const [queueText, workText] = await Promise.all([
        o.queues.health().then(prometheusMetrics, (err: unknown) => {
          // HTTP metrics are still worth serving while Redis is down; /readyz reports the outage.
          app.log.warn({ err }, 'queue health unavailable for /metrics');
          return '';
        }),
        o.work ? o.work().then(workMetrics, (err: unknown) => (app.log.warn({ err }, 'work counts unavailable for /metrics'), workMetrics(null))) : '',
      ]);
      return reply.type(registry.contentType).send((await registry.metrics()) + queueText + workText);
    },
  );
  return registry;
}

type Sample = [labels: Record<string, string>, value: number];

function family(name: string, help: string, samples: Sample[]): string {
  const line = ([labels, value]: Sample) => {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    return `${name}${l.length ? `{${l.join(',')}}` : ''} ${value}`;
  };
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${samples.map(line).join('\n')}\n`;
}

/** The Postgres gauges (names and alerts: docs/operations.md, "Stuck work"); `dynasyn_work_up 0` when Postgres failed. */
export function workMetrics(work: WorkSnapshot | null): string {
  let text = family('dynasyn_work_up', 'Whether the work counts below could be read from Postgres at this scrape', [[{}, work ? 1 : 0]]);
  if (!work) return text;
  const by = (counts: Record<string, number>): Sample[] => Object.entries(counts).map(([status, n]) => [{ status }, n]);
  text += family('dynasyn_personalizations', 'Personalizations by status (Postgres, the system of record)', by(work.personalizations));
  text += family('dynasyn_samples', 'Sample rows by status', by(work.samples));
  text += family(
    'dynasyn_personalizations_stale',
    "Personalizations in a running stage with no write for longer than the stage's lease (STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset): stuck or lost",
    Object.entries(work.stale).map(([status, s]) => [{ status }, s.count]),
  );
  text += family(
    'dynasyn_personalizations_stale_oldest_seconds',
    'Seconds since the quietest stale personalization of each running stage last moved (0 when none)',
    Object.entries(work.stale).map(([status, s]) => [{ status }, s.oldestSeconds ?? 0]),
  );
  text += family('dynasyn_personalizations_queued_oldest_seconds', 'Age of the oldest queued personalization (0 when none)', [
    [{}, work.oldestQueuedSeconds ?? 0],
  ]);
  if (work.recoveries)
    text += family('dynasyn_recoveries', 'Sum of recoveries recorded on existing rows (work re-enqueued after Redis lost it), by kind', [
      [{ kind: 'personalization' }, work.recoveries.personalizations],
      [{ kind: 'sample' }, work.recoveries.samples],
    ]);
  text += family('dynasyn_webhook_deliveries', 'Webhook deliveries by status (failed: given up after every retry)', by(work.webhookDeliveries));
  return text;
}
