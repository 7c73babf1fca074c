/**
 * Worker heartbeats: each worker keeps a small JSON key with a TTL alive in Redis, so the health page and the
 * autoscaler see which workers exist, on which device, and how busy they are. A worker that dies stops
 * refreshing and its key expires within the TTL.
 */
import type { Redis } from 'ioredis';
import { isRedisConnectionError } from './connection-outage.js';
import { silentLogger, type Logger } from './logger.js';

/** Where a worker runs its models. */
export type Device = 'cpu' | 'cuda';

export interface WorkerHeartbeat {
  workerId: string;
  host: string;
  pid: number;
  queue: string;
  device: Device;
  /** ISO time the worker started. */
  startedAt: string;
  /** ISO time of this beat. */
  beatAt: string;
  activeJobs: number;
  concurrency: number;
}

export function heartbeatKey(prefix: string, queue: string, workerId: string): string {
  return `${prefix}:heartbeat:${queue}:${workerId}`;
}

export interface HeartbeatOptions {
  prefix: string;
  /** Milliseconds between beats. */
  intervalMs: number;
  /** Key lifetime; a few intervals so one slow beat does not make the worker vanish. */
  ttlMs: number;
  logger?: Logger;
}

export interface Heartbeat {
  /** Writes one beat now. */
  beat(): Promise<void>;
  /** Stops beating and deletes the key. */
  stop(): Promise<void>;
}

export function startHeartbeat(
  client: Redis,
  describe: () => Omit<WorkerHeartbeat, 'beatAt'>,
  { prefix, intervalMs, ttlMs, logger = silentLogger }: HeartbeatOptions,
): Heartbeat {
  const first = describe();
  const key = heartbeatKey(prefix, first.queue, first.workerId);
  let stopped = false;
  const beat = async (): Promise<void> => {
    if (stopped) return;
    const body: WorkerHeartbeat = { ...describe(), beatAt: new Date().toISOString() };
    await client.set(key, JSON.stringify(body), 'PX', ttlMs);
  };
  const tick = (): void => {
    // an unreachable Redis is logged once per outage by the client (connection-outage.ts), not once per beat
    beat().catch((err: Error) => {
      if (!isRedisConnectionError(err)) logger.warn({ err: err.message, key }, 'worker heartbeat failed');
    });
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    beat,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await client.del(key).catch(() => undefined);
    },
  };
}

/** Live heartbeats of one queue (keys not yet expired). */
export async function readHeartbeats(client: Redis, prefix: string, queue: string): Promise<WorkerHeartbeat[]> {
  const pattern = `${globEscape(prefix)}:heartbeat:${globEscape(queue)}:*`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await client.mget(keys);
  const beats: WorkerHeartbeat[] = [];
  for (const value of values) {
    if (value === null) continue; // expired between SCAN and MGET
    try {
      beats.push(JSON.parse(value) as WorkerHeartbeat);
    } catch {
      // a foreign key under our pattern: not a heartbeat
    }
  }
  return beats.sort((a, b) => a.workerId.localeCompare(b.workerId));
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
