/**
 * The API process: environment -> services -> server -> listen; SIGTERM/SIGINT stop accepting, let in-flight
 * requests finish (bounded by SHUTDOWN_GRACE_SECONDS), then close queues, Redis and the database.
 * Importing this module starts nothing; running it (`node dist/index.js`) does.
 */
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '@dynasyn/logger';
import { parseEnv, type Env } from './env.js';
import { buildServer } from './server.js';
import { configFromEnv, openServices } from './services.js';

export { app, type AppOptions } from './app.js';
export { buildServer, type ServerOptions } from './server.js';
export { openServices, configFromEnv, type Services } from './services.js';
export { parseEnv, envSchema, type Env } from './env.js';
export { DEFAULT_CONFIG, type ApiConfig } from './config.js';
export type { ApiDeps } from './deps.js';

export interface StartOptions {
  /** Apply pending migrations before listening. */
  migrate?: boolean;
  /** Install SIGTERM/SIGINT handlers that close the server and exit (off when embedded, e.g. `dynasyn serve`). */
  handleSignals?: boolean;
}

export async function startApi(env: Env, opts: StartOptions = {}): Promise<FastifyInstance> {
  const logger = createLogger({ name: 'api', level: env.LOG_LEVEL });
  const services = await openServices(env, { migrate: opts.migrate ?? false, logger });
  // rate-limit counters beside the queues' keys, so two deployments sharing a Redis keep theirs apart
  const server = buildServer({
    deps: services.deps,
    config: configFromEnv(env),
    logger,
    rateLimitNamespace: `${env.QUEUE_PREFIX}-rl:`,
    ...(env.TRUST_PROXY !== undefined ? { trustProxy: env.TRUST_PROXY } : {}),
  });
  // Runs after in-flight requests have finished (server.close waits for them).
  server.addHook('onClose', async () => services.close());
  try {
    await server.listen({ port: env.PORT, host: env.HOST });
  } catch (err) {
    await server.close().catch(() => undefined);
    throw err;
  }
  if (opts.handleSignals ?? true) {
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) return;
      closing = true;
      server.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
      const timer = setTimeout(() => {
        server.log.error({ graceSeconds: env.SHUTDOWN_GRACE_SECONDS }, 'shutdown grace period over; exiting');
        process.exit(1);
      }, env.SHUTDOWN_GRACE_SECONDS * 1000);
      timer.unref();
      server.close().then(
        () => process.exit(0),
        (err: unknown) => {
          server.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  }
  return server;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = parseEnv(process.env);
  startApi(env, { migrate: env.MIGRATE_ON_START }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
