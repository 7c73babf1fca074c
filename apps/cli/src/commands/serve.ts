/**
 * `dynasyn serve`: the job service on one machine against the configured Postgres, Redis and storage: the API in
 * this process, each worker queue in a child process started as the deployment starts a worker app (see
 * serve-workers.ts), so no stage work runs on the API's event loop. Pending migrations are applied and the
 * backbone resolved first; SIGINT/SIGTERM stop taking requests, send SIGTERM to the workers (running stages
 * checkpoint), wait for them up to SHUTDOWN_GRACE_SECONDS (then SIGKILL), and exit.
 */
import { webhookAllowCidrs } from '@dynasyn/config';
import type { Command } from 'commander';
import { cacheDirOf, parseServiceEnv, s3OptionsFrom, type ServiceEnv } from './service-env.js';
import { startWorkers, type RunningWorkers } from './serve-workers.js';

/** One line on stderr per lifecycle event (the API logs JSON lines through pino on stdout). */
const say = (line: string) => process.stderr.write(`dynasyn serve: ${line}\n`);

export async function serve(source: NodeJS.ProcessEnv): Promise<void> {
  const env = parseServiceEnv(source);
  // loaded here, not at the top: the pipeline commands never pay for Fastify, Prisma and BullMQ
  const { migrate } = await import('@dynasyn/db');
  const { parseEnv: parseApiEnv, startApi } = await import('@dynasyn/api');
  const applied = await migrate(env.DATABASE_URL, { onApplied: (name) => say(`applied migration ${name}`) });
  if (applied.length === 0) say('database is up to date');
  const { resolveBackbone } = await import('@dynasyn/stages');
  const { createBlobStore } = await import('@dynasyn/storage');
  if (env.BACKBONE === undefined) say(`backbone: the tiny random-weight bundle (created on first use in ${cacheDirOf(env)})`);
  else if (env.BACKBONE.startsWith('s3://')) say(`backbone: syncing ${env.BACKBONE} into ${cacheDirOf(env)}`);
  const backboneDir = await resolveBackbone({
    backbone: env.BACKBONE,
    cacheDir: cacheDirOf(env),
    openStore: (url) => createBlobStore(url, { s3: s3OptionsFrom(env) }),
  });
  say(`backbone ${backboneDir}`);
  const webhooks = webhookAllowCidrs(env);
  if (webhooks.deprecation) say(webhooks.deprecation);

  const workers: RunningWorkers = await startWorkers(source, env, backboneDir, say);
  let api: Awaited<ReturnType<typeof startApi>>;
  try {
    api = await startApi(parseApiEnv(apiEnvironment(source, env)), { migrate: false, handleSignals: false });
  } catch (e) {
    await workers.close(env.SHUTDOWN_GRACE_SECONDS * 1000);
    throw e;
  }
  say(`listening on http://${env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST}:${env.PORT} (workers: ${workers.names.join(', ') || 'none'})`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    say(`${signal}: no new requests or jobs; running stages checkpoint and stop`);
    const graceMs = env.SHUTDOWN_GRACE_SECONDS * 1000;
    // the workers are SIGKILLed at the grace; this is for an API close that hangs
    const timer = setTimeout(() => {
      say(`still closing ${graceMs / 1000 + 5} s after ${signal}; exiting`);
      process.exit(1);
    }, graceMs + 5_000);
    timer.unref();
    Promise.all([api.close(), workers.close(graceMs)]).then(
      ([, clean]) => {
        say(clean ? 'stopped' : `stopped (a worker had to be killed after ${graceMs / 1000} s)`);
        process.exit(clean ? 0 : 1);
      },
      (e: unknown) => {
        say(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a signal delivered twice (to the bin's process and to this one) must not kill mid-checkpoint
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The API's own environment schema, fed with serve's resolved values (storage default, shared prefix). */
function apiEnvironment(source: NodeJS.ProcessEnv, env: ServiceEnv): NodeJS.ProcessEnv {
  return {
    ...source,
    PORT: String(env.PORT),
    HOST: env.HOST,
    REDIS_URL: env.REDIS_URL,
    QUEUE_PREFIX: env.QUEUE_PREFIX,
    STORAGE_URL: env.STORAGE_URL,
    WEBHOOK_ALLOW_CIDRS: webhookAllowCidrs(env).cidrs.join(','),
    WEBHOOK_ALLOW_PRIVATE: 'false',
    MIGRATE_ON_START: 'false',
    // serve's own workers include the webhooks queue (WORKERS), so the embedded API does not consume it too
    WEBHOOK_WORKER: 'false',
  };
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the API, and each worker queue in a child process (env: DATABASE_URL, REDIS_URL, PORT, STORAGE_URL, BACKBONE, WEBHOOK_ALLOW_CIDRS)')
    .action(async () => {
      await serve(process.env);
    });
}
