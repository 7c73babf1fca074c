/**
 * The webhooks worker and its sweeper. Postgres is the system of record for deliveries; the `webhook.deliver`
 * job in Redis is only the trigger of the next attempt, and it can be lost: Redis restarted without
 * persistence or evicting keys, a crash between recording a delivery and enqueueing its job, a worker killed
 * on the job's last BullMQ attempt before the outcome was recorded. The sweep, run every minute by a BullMQ job
 * scheduler (one run per period, whatever the number of webhook workers), finds deliveries Postgres holds as
 * pending and due since more than a grace period, and for each one with no live job (waiting, delayed,
 * active) enqueues it again with the attempts it has left, or gives it up (`failed`) when none are left.
 */
import type { Db } from '@dynasyn/db';
import { createWorker, enqueue, webhooksCatalog, type CreateWorkerOptions, type QueueSet, type QueueWorker } from '@dynasyn/queue';
import { deliveryStoreFrom } from './db-store.js';
import { createDeliverJobHandler } from './delivery.js';

export interface SweepOptions {
  /** Clock (tests). */
  now?: () => Date;
  /** A delivery is swept once due for this long (its job may be on its way). Default 60 s. */
  graceMs?: number;
  /** Deliveries looked at per sweep, oldest due first. Default 500. */
  limit?: number;
  /** Attempts a delivery gets in all. Default the `webhook.deliver` retry policy's (8). */
  maxAttempts?: number;
}

export interface SweepResult {
  /** Pending deliveries due since before the grace period. */
  due: number;
  /** Delivery ids enqueued again (their job was missing or finished). */
  requeued: string[];
  /** Delivery ids given up: no job, and no attempt left. */
  abandoned: string[];
}

const DELIVER = webhooksCatalog.jobs['webhook.deliver'];
const SWEEP = webhooksCatalog.jobs['webhook.sweep'];
/** BullMQ states in which a job will still run (or runs now). */
const LIVE = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

/** One sweep; see the file header. Safe to run concurrently with itself and with the deliver jobs. */
export async function sweepLostDeliveries(db: Pick<Db, 'webhooks'>, queues: QueueSet['queues'], o: SweepOptions = {}): Promise<SweepResult> {
  const now = (o.now?.() ?? new Date()).getTime();
  const maxAttempts = o.maxAttempts ?? DELIVER.retry.attempts;
  const due = await db.webhooks.listDue(new Date(now - (o.graceMs ?? 60_000)), o.limit ?? 500);
  const requeued: string[] = [];
  const abandoned: string[] = [];
  for (const d of due) {
    const job = await queues.webhooks.getJob(DELIVER.jobId({ v: 1, deliveryId: d.id }));
    if (job && LIVE.has(await job.getState())) continue;
    const left = maxAttempts - d.attempts;
    if (left <= 0) {
      const reason = `gave up after ${d.attempts} attempts${d.lastError ? ` (last: ${d.lastError})` : ''}`;
      if (await db.webhooks.abandon(d.id, reason)) abandoned.push(d.id);
      continue;
    }
    // a finished job keeps its id (duplicate enqueues are no-ops), so it goes first; one locked meanwhile is live
    if (
      job &&
      !(await job.remove().then(
        () => true,
        () => false,
      ))
    )
      continue;
    await enqueue(queues, 'webhooks', 'webhook.deliver', { v: 1, deliveryId: d.id }, { attempts: left });
    requeued.push(d.id);
  }
  return { due: due.length, requeued, abandoned };
}

/** Registers (or updates) the sweep's job scheduler: one `webhook.sweep` job every `everyMs`. */
export async function scheduleWebhookSweep(queues: QueueSet['queues'], everyMs = 60_000): Promise<void> {
  await queues.webhooks.upsertJobScheduler(
    'webhook.sweep',
    { every: everyMs },
    {
      name: 'webhook.sweep',
      data: { v: 1 },
      opts: { attempts: SWEEP.retry.attempts, backoff: { ...SWEEP.retry.backoff }, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    },
  );
}

export interface WebhookWorkerOptions extends Omit<CreateWorkerOptions, 'connection' | 'prefix'> {
  /** Private networks receivers may live in (WEBHOOK_ALLOW_CIDRS). Default none. */
  allowCidrs?: readonly string[];
  /** @deprecated Use allowCidrs. `true` opens loopback only. */
  allowPrivate?: boolean;
  /** Period of the sweep. Default 60 s. */
  sweepEveryMs?: number;
  sweep?: Omit<SweepOptions, 'now'>;
}

/**
 * Consumes the webhooks queue: `webhook.deliver` (one signed attempt per job, recorded; BullMQ retries) and
 * `webhook.sweep`; schedules the sweep. `connection`: the worker's own Redis connection (`redisOptions(url,
 * 'worker')`); the key prefix is the queues'.
 */
export async function startWebhookWorker(
  db: Pick<Db, 'webhooks' | 'tenants'>,
  set: QueueSet,
  connection: CreateWorkerOptions['connection'],
  o: WebhookWorkerOptions = {},
): Promise<QueueWorker> {
  const { allowPrivate, allowCidrs, sweepEveryMs, sweep, ...workerOptions } = o;
  const deliver = createDeliverJobHandler(deliveryStoreFrom(db), {
    ...(allowPrivate !== undefined ? { allowPrivate } : {}),
    ...(allowCidrs ? { allowCidrs } : {}),
  });
  await scheduleWebhookSweep(set.queues, sweepEveryMs);
  return createWorker(
    webhooksCatalog,
    {
      'webhook.deliver': async (p, ctx) => deliver(p, ctx.job),
      'webhook.sweep': async (_p, ctx) => {
        const r = await sweepLostDeliveries(db, set.queues, sweep);
        if (r.requeued.length || r.abandoned.length)
          ctx.logger.warn({ requeued: r.requeued, abandoned: r.abandoned }, 'webhook deliveries without a queue job');
        return r;
      },
      // deliveries are short HTTP calls: many at once, the ordinary lock
    },
    { lockDuration: 60_000, concurrency: 8, ...workerOptions, connection, prefix: set.prefix },
  );
}
