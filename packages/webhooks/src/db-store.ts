/** The webhook stores over packages/db (Postgres): deliveries, their attempts, and the tenant's current secret. */
import type { Db } from '@dynasyn/db';
import type { DeliveryRecord, DeliveryStore } from './delivery.js';
import type { WebhookPayload } from './events.js';
import type { NotifyPorts } from './notify.js';

export function deliveryStoreFrom(db: Pick<Db, 'webhooks' | 'tenants'>): DeliveryStore {
  return {
    async get(id) {
      const d = await db.webhooks.get(id);
      if (!d) return undefined;
      const status: DeliveryRecord['status'] = d.status === 'delivered' ? 'succeeded' : d.status;
      return { id: d.id, eventId: d.eventId, tenantId: d.tenantId, url: d.url, payload: d.payload as unknown as WebhookPayload, attempts: d.attempts, status };
    },
    async secretFor(tenantId) {
      const t = await db.tenants.get(tenantId);
      if (!t) throw new Error(`tenant ${tenantId} does not exist`);
      return t.webhookSecret;
    },
    async recordAttempt(id, a) {
      await db.webhooks.markAttempt(id, {
        ok: a.status === 'succeeded',
        ...(a.statusCode !== undefined ? { statusCode: a.statusCode } : {}),
        ...(a.error !== undefined ? { error: a.error } : {}),
        ...(a.nextAttemptAt ? { nextAttemptAt: a.nextAttemptAt } : {}),
      });
    },
  };
}

/**
 * `notify`'s ports over packages/db: the delivery row (once per `eventId`) and `enqueueDelivery`, which puts
 * the `webhook.deliver` job on the webhooks queue (packages/queue `enqueue`).
 */
export function notifyPortsFrom(db: Pick<Db, 'webhooks'>, enqueueDelivery: (deliveryId: string) => Promise<void>): NotifyPorts {
  return {
    async createDelivery(d) {
      const row = await db.webhooks.createDelivery({
        tenantId: d.tenantId,
        personalizationId: d.personalizationId ?? null,
        eventType: d.payload.type,
        eventId: d.eventId,
        url: d.url,
        payload: d.payload as unknown as object,
      });
      return row.id;
    },
    enqueueDelivery,
  };
}
