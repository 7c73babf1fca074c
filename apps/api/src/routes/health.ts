/** Liveness (the process answers) and readiness (Postgres, Redis and storage answer). */
import { isRedisConnectionError } from '@dynasyn/queue';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';

const READY_TIMEOUT_MS = 3000;

export function healthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const checks: Record<string, 'ok' | 'down'> = {};
    await Promise.all(
      Object.entries(deps.readiness).map(async ([name, probe]) => {
        try {
          await withTimeout(probe(), READY_TIMEOUT_MS);
          checks[name] = 'ok';
        } catch (err) {
          // a Redis outage has its one line already (packages/queue): not one more, with a stack, per probe
          if (!(name === 'redis' && isRedisConnectionError(err))) app.log.warn({ check: name, err: (err as Error).message }, 'readiness check failed');
          checks[name] = 'down';
        }
      }),
    );
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
