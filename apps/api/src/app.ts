/**
 * The API as a Fastify plugin (fastify/demo layout): routes, auth, rate limits, docs, metrics and ops, built
 * from its dependencies and config. No listen here: server.ts and tests (`app.inject`) decide that.
 */
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { ApiConfig } from './config.js';
import type { ApiDeps } from './deps.js';
import { authenticate } from './plugins/auth.js';
import { errorSchema, installErrorHandler } from './plugins/errors.js';
import { installLogRedaction } from './plugins/log-redaction.js';
import { installMetrics } from './plugins/metrics.js';
import { opsPlugin } from './plugins/ops.js';
import { installRateLimits } from './plugins/rate-limits.js';
import { uploadRoutes } from './routes/uploads.js';
import { fileRoutes } from './routes/files.js';
import { healthRoutes } from './routes/health.js';
import { personalizationRoutes } from './routes/personalizations.js';
import { sampleRoutes } from './routes/samples.js';
import { webhookRoutes } from './routes/webhooks.js';
import { answerUnavailable } from './unavailable.js';
import { errorRef } from './routes/schemas.js';

export interface AppOptions {
  deps: ApiDeps;
  config: ApiConfig;
  /** Namespace of the rate-limit counters in Redis (tests use a fresh one). */
  rateLimitNamespace?: string;
}

export async function app(fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const { deps, config } = opts;
  installLogRedaction(fastify);
  fastify.addSchema(errorSchema);
  installErrorHandler(fastify);

  if (config.docs) {
    await fastify.register(swagger, {
      openapi: {
        info: { title: 'DynASyn API', version: '0.1.0', description: 'Personalize subjects from one image; sample them in new scenes.' },
        components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
        security: [{ apiKey: [] }],
      },
      // shared schemas under their own names (`Error`), not def-0, for code generators
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    });
    await fastify.register(swaggerUi, { routePrefix: '/docs' });
  }

  const work = () => deps.db.ops.workSnapshot({ leaseSeconds: config.stageLeaseSeconds });
  installMetrics(fastify, { queues: deps.queues, work, ...(config.metricsToken ? { token: config.metricsToken } : {}) });
  healthRoutes(fastify, deps);

  // Everything tenant-facing: rate limited per client address, authenticated, then rate limited per API key.
  await fastify.register(async (v1) => {
    // 503 with Retry-After when the job queue (Redis) is down; every other error goes on to installErrorHandler's
    answerUnavailable(v1);
    await installRateLimits(v1, {
      perKeyMax: config.rateLimitMax,
      perAddressMax: config.rateLimitAddressMax,
      windowMs: config.rateLimitWindowMs,
      ...(deps.redis ? { redis: deps.redis } : {}),
      nameSpace: opts.rateLimitNamespace ?? 'dynasyn-rl:',
    });
    v1.addHook('onRoute', documentV1Route);
    v1.decorateRequest('tenant', null as never);
    v1.addHook('onRequest', authenticate(deps.db));
    await v1.register(multipart, {
      // one file more than allowed, so that one mask too many meets the clearer TOO_MANY_SUBJECTS check
      limits: { fileSize: config.maxUploadBytes, files: config.maxSubjects + 2, fields: 8 + config.maxSubjects, parts: config.maxSubjects + 10 },
      throwFileSizeLimit: true,
    });
    personalizationRoutes(v1, deps, config);
    sampleRoutes(v1, deps, config);
    webhookRoutes(v1, deps);
    fileRoutes(v1, deps);
    uploadRoutes(v1, deps, config);
  });

  if (config.opsToken) await fastify.register(opsPlugin, { queues: deps.queues, work, token: config.opsToken });
}

/**
 * What every /v1 route can answer besides its own responses: 401 (no or unknown key), 429 (rate limit, with
 * `x-ratelimit-*` and `retry-after` headers) and, with path or query parameters, 400 `VALIDATION_ERROR`.
 */
function documentV1Route(route: RouteOptions): void {
  const schema = route.schema as (Record<string, unknown> & { response?: Record<string, unknown> }) | undefined;
  if (!schema) return;
  const response = { ...(schema.response ?? {}) };
  for (const code of [401, 429, ...(schema['params'] || schema['querystring'] ? [400] : [])]) response[code] ??= errorRef;
  schema.response = response;
}
