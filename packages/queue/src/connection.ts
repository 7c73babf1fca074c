/**
 * Redis connections for BullMQ. Workers block on Redis and must never give up a command
 * (`maxRetriesPerRequest: null`, which BullMQ requires of worker connections); producers in the API fail fast
 * instead so a request does not hang through an outage. BullMQ also needs `maxmemory-policy noeviction`:
 * under any other policy Redis may evict job keys under memory pressure and jobs vanish silently. Every client
 * opened here reports its errors to the outage log (connection-outage.ts).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { watchRedisClient } from './connection-outage.js';
import { silentLogger, type Logger } from './logger.js';

/** Who holds the connection: workers block and wait forever, producers fail fast. */
export type ConnectionRole = 'worker' | 'producer';

/** ioredis options for a `redis://` / `rediss://` URL and a role. */
export function redisOptions(url: string, role: ConnectionRole): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`invalid Redis URL "${redact(url)}": expected redis://[user:password@]host:port[/db]`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`invalid Redis URL "${redact(url)}": protocol must be redis: or rediss:`);
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`invalid Redis URL "${redact(url)}": database must be an integer`);
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 6379,
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    // A producer's command while Redis is unreachable fails at once instead of waiting in ioredis's offline queue
    // for the reconnect (a request hung 26-46 s): the API answers 503 and the client retries.
    ...(role === 'worker' ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 2, enableOfflineQueue: false }),
  };
}

/** Reads the eviction policy; CONFIG may be disabled (managed Redis), then INFO is asked instead. */
export async function evictionPolicy(client: Redis): Promise<string | undefined> {
  try {
    const reply = (await client.config('GET', 'maxmemory-policy')) as unknown as string[];
    if (reply[1]) return reply[1];
  } catch {
    // fall through to INFO
  }
  const info = await client.info('memory');
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
}

/**
 * Warns (once, clearly) unless the server runs `noeviction`. Returns the policy found, or undefined when the
 * server would not say.
 */
export async function checkEvictionPolicy(client: Redis, logger: Logger = silentLogger): Promise<string | undefined> {
  const policy = await evictionPolicy(client);
  if (policy !== 'noeviction') {
    logger.warn(
      { maxmemoryPolicy: policy ?? 'unknown' },
      `Redis maxmemory-policy is "${policy ?? 'unknown'}", not "noeviction": under memory pressure Redis may evict ` +
        'BullMQ job keys and jobs are lost silently. Set `maxmemory-policy noeviction` in redis.conf ' +
        '(or CONFIG SET maxmemory-policy noeviction).',
    );
  }
  return policy;
}

/** An ioredis client whose errors go to the outage log: never "Unhandled error event", one line per outage. */
export function createRedisClient(options: RedisOptions, logger: Logger = silentLogger): Redis {
  return watchRedisClient(new Redis(options), logger);
}

/** Opens a client for a role, waits until it is ready and checks the eviction policy. */
export async function connectRedis(url: string, role: ConnectionRole, logger: Logger = silentLogger): Promise<Redis> {
  // lazy: a producer has no offline queue, so nothing may be sent before `connect` has resolved
  const client = createRedisClient({ ...redisOptions(url, role), lazyConnect: true }, logger);
  try {
    await client.connect();
    await checkEvictionPolicy(client, logger);
  } catch (err) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
  return client;
}

/** A URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}
