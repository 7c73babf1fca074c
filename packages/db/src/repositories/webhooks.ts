import type { Prisma, PrismaClient, WebhookDelivery } from '../generated/client.js';
import type { Tx } from './idempotency.js';

export interface DeliveryInput {
  tenantId: string;
  personalizationId?: string | null;
  /** e.g. `personalization.training.completed`. */
  eventType: string;
  /** The `webhook-id`; creating the same one twice returns the first (a re-run stage sends one message). */
  eventId: string;
  url: string;
  payload: Prisma.InputJsonValue;
  /** When to first try; default now. */
  nextAttemptAt?: Date;
}

export interface AttemptResult {
  /** The receiver answered 2xx. */
  ok: boolean;
  statusCode?: number;
  error?: string;
  /** When to retry after a failure; absent means give up (status `failed`). */
  nextAttemptAt?: Date;
}

export interface WebhooksRepository {
  createDelivery(input: DeliveryInput): Promise<WebhookDelivery>;
  /** Records one attempt: `delivered` on success, else `pending` until nextAttemptAt or `failed` without one. */
  markAttempt(id: string, result: AttemptResult): Promise<WebhookDelivery>;
  /** Pending deliveries whose time has come, oldest first. */
  listDue(now: Date, limit?: number): Promise<WebhookDelivery[]>;
  /** Gives a pending delivery up (status `failed`, no next attempt) with the reason in lastError; false when it was not pending. */
  abandon(id: string, reason: string): Promise<boolean>;
  get(id: string): Promise<WebhookDelivery | null>;
  /** The tenant's deliveries, newest first. */
  list(tenantId: string, options?: { personalizationId?: string; limit?: number }): Promise<WebhookDelivery[]>;
}

/** `createDelivery` on a client or a transaction's (fence.ts). */
export const createDeliveryOn = (client: Tx | PrismaClient, input: DeliveryInput): Promise<WebhookDelivery> =>
  client.webhookDelivery.upsert({
    where: { eventId: input.eventId },
    create: { ...input, personalizationId: input.personalizationId ?? null, nextAttemptAt: input.nextAttemptAt ?? new Date() },
    update: {},
  });

export function createWebhooksRepository(prisma: PrismaClient): WebhooksRepository {
  return {
    createDelivery: (input) => createDeliveryOn(prisma, input),
    markAttempt: (id, result) =>
      prisma.webhookDelivery.update({
        where: { id },
        data: {
          attempts: { increment: 1 },
          lastStatusCode: result.statusCode ?? null,
          lastError: result.ok ? null : (result.error ?? (result.statusCode ? `HTTP ${result.statusCode}` : 'no response')),
          status: result.ok ? 'delivered' : result.nextAttemptAt ? 'pending' : 'failed',
          nextAttemptAt: result.ok ? null : (result.nextAttemptAt ?? null),
          ...(result.ok ? { deliveredAt: new Date() } : {}),
        },
      }),
    listDue: (now, limit = 100) =>
      prisma.webhookDelivery.findMany({
        where: { status: 'pending', OR: [{ nextAttemptAt: null }, { nextAttemptAt: { lte: now } }] },
        orderBy: [{ nextAttemptAt: 'asc' }, { createdAt: 'asc' }],
        take: limit,
      }),
    abandon: async (id, reason) => {
      const r = await prisma.webhookDelivery.updateMany({
        where: { id, status: 'pending' },
        data: { status: 'failed', lastError: reason, nextAttemptAt: null },
      });
      return r.count === 1;
    },
    get: (id) => prisma.webhookDelivery.findUnique({ where: { id } }),
    list: (tenantId, options = {}) =>
      prisma.webhookDelivery.findMany({
        where: { tenantId, ...(options.personalizationId ? { personalizationId: options.personalizationId } : {}) },
        orderBy: { createdAt: 'desc' },
        take: options.limit ?? 100,
      }),
  };
}
