/**
 * Delivery: one signed POST per attempt, the outcome recorded through a DeliveryStore, the next attempt
 * scheduled with exponential backoff and jitter. A job runs ONE attempt and says when to run the next, so
 * no worker sleeps for an hour; `webhook-id` is the delivery id, the same on every retry (receivers dedupe).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WebhookError } from './errors.js';
import type { WebhookPayload } from './events.js';
import { webhookHeaders } from './signing.js';
import { isIP } from 'node:net';
import { checkWebhookPort, checkWebhookUrl, guardedLookup, parseWebhookUrl, type GuardOptions, type Resolver } from './ssrf.js';

/** A delivery as the store keeps it. */
export interface DeliveryRecord {
  id: string;
  /** The `webhook-id` (the same on every retry; receivers dedupe on it). Default `id`. */
  eventId?: string;
  tenantId: string;
  url: string;
  payload: WebhookPayload;
  /** Attempts made so far. */
  attempts: number;
  status: 'pending' | 'succeeded' | 'failed';
}

export interface AttemptRecord {
  /** 1-based number of this attempt. */
  attempt: number;
  at: Date;
  /** HTTP status, when a response came. */
  statusCode?: number;
  /** Why the attempt failed without a 2xx (network error, timeout, refused address, status). */
  error?: string;
  /** The delivery's status after this attempt. */
  status: DeliveryRecord['status'];
  /** When to try again (status pending). */
  nextAttemptAt?: Date;
}

/** What delivery needs from the system of record (packages/db implements it over Postgres). */
export interface DeliveryStore {
  get(id: string): Promise<DeliveryRecord | undefined>;
  /** The tenant's current signing secret (rotations take effect on the next attempt). */
  secretFor(tenantId: string): Promise<string>;
  recordAttempt(id: string, attempt: AttemptRecord): Promise<void>;
}

export interface DeliveryPolicy {
  /** Delays before retry 1, 2, ... in ms; the number of retries is its length. Default 5 s, 30 s, 2 min, 10 min, 1 h. */
  scheduleMs?: readonly number[];
  /** Jitter as a fraction of each delay (+-), so retries of many deliveries spread out. Default 0.2. */
  jitter?: number;
  /** Per-attempt timeout in ms (connect to end of response). Default 10 s. */
  timeoutMs?: number;
  /** Private networks receivers may live in (operator setting WEBHOOK_ALLOW_CIDRS); never link-local, multicast or broadcast. Default none. */
  allowCidrs?: readonly string[];
  /** @deprecated Use allowCidrs. `true` opens loopback only (127.0.0.0/8, ::1/128). */
  allowPrivate?: boolean;
  /** DNS resolver (tests). Default the system's. */
  resolve?: Resolver;
  /**
   * Set when the caller's queue decides how many attempts there are (BullMQ attempts): true on its last one, so
   * a failure gives up there; false keeps the delivery pending whatever the schedule says. Default: the schedule decides.
   */
  final?: boolean;
  /** Clock and randomness (tests). */
  now?: () => Date;
  random?: () => number;
}

export const DEFAULT_SCHEDULE_MS = [5_000, 30_000, 120_000, 600_000, 3_600_000] as const;

export interface AttemptOutcome {
  ok: boolean;
  statusCode?: number;
  error?: string;
}

/** One signed POST of `body`; never throws for network trouble, returns it. */
export async function postWebhook(url: string, secret: string, id: string, body: string, p: DeliveryPolicy = {}): Promise<AttemptOutcome> {
  const timestamp = Math.floor((p.now?.() ?? new Date()).getTime() / 1000);
  let target: URL;
  try {
    target = parseWebhookUrl(url);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const guard: GuardOptions = {
    ...(p.allowCidrs ? { allowCidrs: p.allowCidrs } : {}),
    ...(p.allowPrivate !== undefined ? { allowPrivate: p.allowPrivate } : {}),
    ...(p.resolve ? { resolve: p.resolve } : {}),
  };
  try {
    checkWebhookPort(target);
    // an IP literal never goes through `lookup`, so it is checked here; names are checked at connect time
    if (isIP(target.hostname.replace(/^\[|\]$/g, ''))) await checkWebhookUrl(url, guard);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const headers = { 'content-type': 'application/json', 'user-agent': 'dynasyn-webhooks/0.1', ...webhookHeaders(secret, id, timestamp, body) };
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<AttemptOutcome>((resolve) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers,
        timeout: p.timeoutMs ?? 10_000,
        lookup: guardedLookup(guard),
      },
      (res: IncomingMessage) => {
        res.resume(); // the body does not matter; drain it so the socket is freed
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 300 ? { ok: true, statusCode: code } : { ok: false, statusCode: code, error: `HTTP ${code}` });
        });
        res.on('error', (e) => resolve({ ok: false, statusCode: res.statusCode ?? 0, error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${p.timeoutMs ?? 10_000} ms`)));
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
    req.end(body);
  });
}

/** Delay before retry number `retry` (1-based), with jitter; undefined when the schedule is exhausted. */
export function retryDelayMs(retry: number, p: Pick<DeliveryPolicy, 'scheduleMs' | 'jitter' | 'random'> = {}): number | undefined {
  const base = (p.scheduleMs ?? DEFAULT_SCHEDULE_MS)[retry - 1];
  if (base === undefined) return undefined;
  const j = p.jitter ?? 0.2;
  return Math.max(0, Math.round(base * (1 + j * (2 * (p.random ?? Math.random)() - 1))));
}

export interface DeliverResult {
  status: DeliveryRecord['status'];
  attempt: number;
  /** When status is pending: run the next attempt after this many ms. */
  retryInMs?: number;
  outcome?: AttemptOutcome;
}

/**
 * The `webhook.deliver` job: one attempt of delivery `id`, recorded; a finished delivery is a no-op
 * (BullMQ may run a job twice). Returns when to retry, for the caller to re-enqueue with that delay.
 */
export async function deliverOnce(store: DeliveryStore, id: string, p: DeliveryPolicy = {}): Promise<DeliverResult> {
  const d = await store.get(id);
  if (!d) throw new WebhookError('UNKNOWN_DELIVERY', `webhook delivery ${id} does not exist`);
  if (d.status !== 'pending') return { status: d.status, attempt: d.attempts };
  const secret = await store.secretFor(d.tenantId);
  const outcome = await postWebhook(d.url, secret, d.eventId ?? d.id, JSON.stringify(d.payload), p);
  const attempt = d.attempts + 1;
  const now = p.now?.() ?? new Date();
  const scheduleMs = p.scheduleMs ?? DEFAULT_SCHEDULE_MS;
  const retryInMs =
    outcome.ok || p.final === true ? undefined : (retryDelayMs(attempt, p) ?? (p.final === false ? (retryDelayMs(scheduleMs.length, p) ?? 0) : undefined));
  const status: DeliveryRecord['status'] = outcome.ok ? 'succeeded' : retryInMs === undefined ? 'failed' : 'pending';
  await store.recordAttempt(id, {
    attempt,
    at: now,
    status,
    ...(outcome.statusCode !== undefined ? { statusCode: outcome.statusCode } : {}),
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(retryInMs !== undefined ? { nextAttemptAt: new Date(now.getTime() + retryInMs) } : {}),
  });
  return { status, attempt, outcome, ...(retryInMs !== undefined ? { retryInMs } : {}) };
}

/** Runs attempts until the delivery succeeds or gives up, sleeping in between (tests, single-process use). */
export async function deliverWithRetries(store: DeliveryStore, id: string, p: DeliveryPolicy = {}): Promise<DeliverResult> {
  for (;;) {
    const r = await deliverOnce(store, id, p);
    if (r.retryInMs === undefined) return r;
    await new Promise((res) => setTimeout(res, r.retryInMs));
  }
}

/**
 * A `webhook.deliver` handler for a queue that retries failed jobs itself (BullMQ attempts + backoff): one
 * attempt, and a thrown error while the delivery is still pending so the queue schedules the next. Pass the
 * BullMQ job (`ctx.job`) so its last attempt is the one recorded as `failed`.
 */
export function createDeliverJobHandler(
  store: DeliveryStore,
  p: DeliveryPolicy = {},
): (payload: { deliveryId: string }, job?: { attemptsMade: number; opts: { attempts?: number } }) => Promise<DeliverResult> {
  return async ({ deliveryId }, job) => {
    // with the BullMQ job at hand, its attempts decide when to give up (recorded `failed` on the last one)
    const final = job ? job.attemptsMade + 1 >= (job.opts.attempts ?? 1) : undefined;
    const r = await deliverOnce(store, deliveryId, { ...p, ...(final !== undefined ? { final } : {}) });
    if (r.status === 'pending') throw new Error(`webhook delivery ${deliveryId} attempt ${r.attempt}: ${r.outcome?.error ?? 'failed'}`);
    return r;
  };
}
