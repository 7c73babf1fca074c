/**
 * Prometheus metrics on a registry of this app's own (several apps can live in one process): HTTP request
 * durations by route, and queue gauges read from queue health at scrape time.
 */
import type { FastifyInstance } from 'fastify';
import { prometheusMetrics } from '@dynasyn/queue';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ApiQueues } from '../deps.js';

export function installMetrics(app: FastifyInstance, queues: ApiQueues): Registry {
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

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    let queueText = '';
    try {
      queueText = prometheusMetrics(await queues.health());
    } catch (err) {
      // HTTP metrics are still worth serving while Redis is down; /readyz reports the outage.
      app.log.warn({ err }, 'queue health unavailable for /metrics');
    }
    return reply.type(registry.contentType).send((await registry.metrics()) + queueText);
  });
  return registry;
}
