/**
 * Queue health for the ops page, /metrics and autoscaling: counts per state, the depth that should drive
 * scaling, the age of the oldest waiting job, recent throughput, stalled jobs and the live workers.
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { readHeartbeats, type WorkerHeartbeat } from './heartbeat.js';

export interface QueueHealth {
  queue: string;
  waiting: number;
  prioritized: number;
  /** Jobs waiting for a delay or a retry backoff. */
  delayed: number;
  /** Delayed jobs whose time has come but which have not been promoted yet: ready work. */
  delayedDue: number;
  /** Flow parents waiting for their children (not work a worker can take). */
  waitingChildren: number;
  active: number;
  completed: number;
  failed: number;
  /** Ready jobs held back because the queue is paused (waiting + prioritized while paused, else 0). */
  paused: number;
  isPaused: boolean;
  /** Ready work that a new worker could start now: waiting + prioritized + delayed-due. */
  depth: number;
  /** Ms since the oldest ready job became ready (created + its delay); null when none waits. */
  oldestWaitingAgeMs: number | null;
  /** Jobs finished per minute over the last `windowMinutes`. */
  throughput: { windowMinutes: number; completedPerMinute: number; failedPerMinute: number };
  /** Active jobs whose lock has expired: their worker is gone; the stalled check will requeue or fail them. */
  stalled: number;
  workers: WorkerHeartbeat[];
}

export interface QueueHealthOptions {
  /** Minutes the throughput is averaged over. Default 5. */
  windowMinutes?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Health of every queue given (a record or list of BullMQ queues sharing `prefix`). */
export async function queueHealth(
  queues: Readonly<Record<string, Queue>> | readonly Queue[],
  connection: Redis,
  prefix: string,
  options: QueueHealthOptions = {},
): Promise<QueueHealth[]> {
  const list = Array.isArray(queues) ? (queues as readonly Queue[]) : Object.values(queues as Record<string, Queue>);
  return Promise.all(list.map((queue) => oneQueueHealth(queue, connection, prefix, options)));
}

async function oneQueueHealth(
  queue: Queue,
  connection: Redis,
  prefix: string,
  { windowMinutes = 5, now = Date.now }: QueueHealthOptions,
): Promise<QueueHealth> {
  const t = now();
  const [counts, delayedDue, isPaused, oldestWaitingAgeMs, throughput, stalled, workers] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'delayed', 'waiting-children', 'active', 'completed', 'failed'),
    queue.getDelayedCount(Math.floor(t) + 1),
    queue.isPaused(),
    oldestReadyAge(queue, t),
    recentThroughput(queue, connection, t, windowMinutes),
    stalledCount(queue, connection),
    readHeartbeats(connection, prefix, queue.name),
  ]);
  const c = (k: string): number => counts[k] ?? 0;
  return {
    queue: queue.name,
    waiting: c('waiting'),
    prioritized: c('prioritized'),
    delayed: c('delayed'),
    delayedDue,
    waitingChildren: c('waiting-children'),
    active: c('active'),
    completed: c('completed'),
    failed: c('failed'),
    paused: isPaused ? c('waiting') + c('prioritized') : 0,
    isPaused,
    depth: c('waiting') + c('prioritized') + delayedDue,
    oldestWaitingAgeMs,
    throughput,
    stalled,
    workers,
  };
}

/** Both ends of the wait list and of the priority set: whichever order jobs were added in, the oldest is there. */
async function oldestReadyAge(queue: Queue, t: number): Promise<number | null> {
  const ends = await Promise.all([
    queue.getJobs(['waiting'], 0, 0, true),
    queue.getJobs(['waiting'], 0, 0, false),
    queue.getJobs(['prioritized'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, false),
  ]);
  const readySince = ends
    .flat()
    .filter((j): j is Job => Boolean(j))
    .map((j) => j.timestamp + (j.delay || 0));
  return readySince.length ? Math.max(0, t - Math.min(...readySince)) : null;
}

/** Finished sets are scored by finish time, so a range count gives the recent rate exactly (within retention). */
async function recentThroughput(queue: Queue, connection: Redis, t: number, windowMinutes: number): Promise<QueueHealth['throughput']> {
  const from = t - windowMinutes * 60_000;
  const [completed, failed] = await Promise.all([connection.zcount(queue.toKey('completed'), from, t), connection.zcount(queue.toKey('failed'), from, t)]);
  return { windowMinutes, completedPerMinute: completed / windowMinutes, failedPerMinute: failed / windowMinutes };
}

async function stalledCount(queue: Queue, connection: Redis): Promise<number> {
  const ids = await connection.lrange(queue.toKey('active'), 0, -1);
  if (ids.length === 0) return 0;
  const pipeline = connection.pipeline();
  for (const id of ids) pipeline.exists(`${queue.toKey(id)}:lock`);
  const replies = (await pipeline.exec()) ?? [];
  return replies.filter(([err, exists]) => !err && exists === 0).length;
}

/** Prometheus text exposition (format 0.0.4) of queue health, for the API's /metrics. */
export function prometheusMetrics(health: readonly QueueHealth[], metricPrefix = 'dynasyn_queue'): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: [Record<string, string>, number][]): void => {
    lines.push(`# HELP ${metricPrefix}_${name} ${help}`, `# TYPE ${metricPrefix}_${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${metricPrefix}_${name}${formatLabels(labels)} ${value}`);
  };
  const states = ['waiting', 'prioritized', 'delayed', 'waitingChildren', 'active', 'completed', 'failed', 'paused'] as const;
  gauge(
    'jobs',
    'Jobs per queue and state.',
    health.flatMap((h) => states.map((s): [Record<string, string>, number] => [{ queue: h.queue, state: s }, h[s]])),
  );
  gauge(
    'depth',
    'Ready jobs (waiting + prioritized + delayed-due): the autoscaling signal.',
    health.map((h) => [{ queue: h.queue }, h.depth]),
  );
  gauge(
    'oldest_waiting_seconds',
    'Age of the oldest ready job in seconds (0 when none).',
    health.map((h) => [{ queue: h.queue }, (h.oldestWaitingAgeMs ?? 0) / 1000]),
  );
  gauge(
    'throughput_per_minute',
    'Jobs finished per minute over the recent window.',
    health.flatMap((h): [Record<string, string>, number][] => [
      [{ queue: h.queue, outcome: 'completed' }, h.throughput.completedPerMinute],
      [{ queue: h.queue, outcome: 'failed' }, h.throughput.failedPerMinute],
    ]),
  );
  gauge(
    'stalled_jobs',
    'Active jobs whose lock expired.',
    health.map((h) => [{ queue: h.queue }, h.stalled]),
  );
  gauge(
    'paused',
    '1 when the queue is paused.',
    health.map((h) => [{ queue: h.queue }, h.isPaused ? 1 : 0]),
  );
  const workerSamples = new Map<string, [Record<string, string>, number]>();
  for (const h of health) {
    for (const device of ['cpu', 'cuda'] as const) workerSamples.set(`${h.queue}/${device}`, [{ queue: h.queue, device }, 0]);
    for (const w of h.workers) {
      const sample = workerSamples.get(`${h.queue}/${w.device}`);
      if (sample) sample[1] += 1;
    }
  }
  gauge('workers', 'Live workers (unexpired heartbeats) per queue and device.', [...workerSamples.values()]);
  gauge(
    'worker_active_jobs',
    'Jobs running on live workers.',
    health.map((h) => [{ queue: h.queue }, h.workers.reduce((n, w) => n + w.activeJobs, 0)]),
  );
  return `${lines.join('\n')}\n`;
}

function formatLabels(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}
