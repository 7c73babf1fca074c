/**
 * A Redis outage logged once when it begins and once when it ends. ioredis reconnects by itself and emits an
 * 'error' per failed attempt (every 50 ms growing to 2 s), once per client, and BullMQ re-emits each on every
 * Queue and Worker over that client; without a listener ioredis prints "[ioredis] Unhandled error event" and
 * BullMQ a stack trace, hundreds a minute. Every client and BullMQ object of a process reports here instead.
 *
 * The state is per Redis server (host:port/db) and per process, not per client: an outage is a fact about the
 * server, and `dynasyn serve` holds a dozen clients to one Redis, opened by packages that do not know each other.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from './logger.js';

interface Outage {
  /** The logger of the most recent watcher that has one (the process's own). */
  logger: Logger;
  /** Since when the server has been unreachable; undefined while it is reachable. */
  since: number | undefined;
  failedAttempts: number;
  /** Watched clients not ready again yet: the recovery is logged when the last one is. */
  down: Set<Redis>;
}

const outages = new Map<string, Outage>();

/** The server a client talks to, for the outage state and the log lines (never the password). */
export function redisEndpoint(options: Pick<RedisOptions, 'host' | 'port' | 'db' | 'path'>): string {
  if (options.path) return `${options.path}/${options.db ?? 0}`;
  return `${options.host ?? 'localhost'}:${options.port ?? 6379}/${options.db ?? 0}`;
}

function outageOf(endpoint: string, logger: Logger): Outage {
  let outage = outages.get(endpoint);
  if (!outage) outages.set(endpoint, (outage = { logger, since: undefined, failedAttempts: 0, down: new Set() }));
  else if (logger !== silentLogger) outage.logger = logger;
  return outage;
}

function failed(endpoint: string, outage: Outage, err: Error): void {
  outage.failedAttempts++;
  if (outage.since !== undefined) return;
  outage.since = Date.now();
  outage.logger.error(
    { redis: endpoint, err: err.message },
    'Redis unreachable: reconnecting; requests that need the queue answer 503 UNAVAILABLE until it is back (logged once per outage)',
  );
}

function recovered(endpoint: string, outage: Outage): void {
  if (outage.since === undefined || outage.down.size > 0) return;
  outage.logger.info({ redis: endpoint, downMs: Date.now() - outage.since, failedAttempts: outage.failedAttempts }, 'Redis reachable again');
  outage.since = undefined;
  outage.failedAttempts = 0;
}

/** Socket-level failures (refused, reset, timed out, unresolvable): the server is unreachable, not one command wrong. */
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

/** True for errors that mean Redis cannot be reached (rather than a failed command or job). */
export function isRedisConnectionError(err: unknown): boolean {
  // duck-typed: socket errors come from node's own realm, where `instanceof Error` of another realm is false
  if (typeof err !== 'object' || err === null) return false;
  const { code, name, message } = err as { code?: unknown; name?: unknown; message?: unknown };
  return (
    (typeof code === 'string' && SOCKET_ERRORS.has(code)) ||
    name === 'MaxRetriesPerRequestError' ||
    (typeof message === 'string' && /Connection is closed|Stream isn't writeable/.test(message))
  );
}

/**
 * Sends an ioredis client's 'error' events to the outage log (which also makes them handled) and its 'ready' to
 * the recovery line, logged once every watched client that failed is ready again (so the process can use Redis
 * again when it is logged). Every client a process opens is watched, by `connectRedis`/`createRedisClient`.
 */
export function watchRedisClient(client: Redis, logger: Logger = silentLogger): Redis {
  const endpoint = redisEndpoint(client.options);
  const outage = outageOf(endpoint, logger);
  client.on('error', (err: Error) => {
    outage.down.add(client);
    failed(endpoint, outage, err);
  });
  client.on('ready', () => {
    outage.down.delete(client);
    recovered(endpoint, outage);
  });
  // closed for good (shutdown): it will not come back, and must not hold the recovery line back
  client.on('end', () => outage.down.delete(client));
  return client;
}

/**
 * An 'error' listener for BullMQ's Queue, FlowProducer and Worker over `options`' server: connection errors are
 * part of the outage (its client's own listener, or the first of them, logs it once); anything else is a real
 * error and logged as `what` each time.
 */
export function queueErrorListener(options: RedisOptions, logger: Logger, what: string, context: object = {}): (err: Error) => void {
  const endpoint = redisEndpoint(options);
  const outage = outageOf(endpoint, logger);
  return (err: Error) => {
    // "Connection is closed" follows the socket error already counted, or a close on shutdown: neither is news
    if (/Connection is closed/.test(err.message)) return;
    if (isRedisConnectionError(err)) failed(endpoint, outage, err);
    else logger.error({ ...context, err: err.message }, what);
  };
}
