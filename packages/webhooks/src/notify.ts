/**
 * Raising an event: record a delivery (the system of record) then enqueue its first attempt. The delivery id
 * is derived from a dedupe key, so a stage that runs twice (BullMQ delivers at least once) raises one event.
 */
import { createHash } from 'node:crypto';
import type { DeliveryRecord } from './delivery.js';
import { webhookPayload, type WebhookEventType, type WebhookPayload } from './events.js';

export interface NotifyPorts {
  /** Inserts the delivery unless one with this eventId exists (upsert-do-nothing); returns the delivery's id. */
  createDelivery(d: Omit<DeliveryRecord, 'id' | 'attempts' | 'status'> & { eventId: string; personalizationId?: string }): Promise<string>;
  /** Enqueues the `webhook.deliver` job for a delivery id. */
  enqueueDelivery(id: string): Promise<void>;
}

/** `msg_` + 32 hex digits of sha256(key): a stable webhook-id for one event. */
export const deliveryId = (key: string): string => `msg_${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;

export interface NotifyArgs {
  tenantId: string;
  /** The personalization's webhook_url; nothing happens without one. */
  url: string | null | undefined;
  type: WebhookEventType;
  data: WebhookPayload['data'];
  /** The personalization the event is about (deliveries are listed per personalization). */
  personalizationId?: string;
  /** What makes this event unique; default `${type}:${data.id}`. */
  dedupeKey?: string;
}

/** Records and enqueues one event; returns the delivery's id, or undefined when there is no URL. */
export async function notify(ports: NotifyPorts, a: NotifyArgs): Promise<string | undefined> {
  if (!a.url) return undefined;
  const eventId = deliveryId(a.dedupeKey ?? `${a.type}:${a.data.id}`);
  const id = await ports.createDelivery({
    eventId,
    tenantId: a.tenantId,
    url: a.url,
    payload: webhookPayload(a.type, a.data),
    ...(a.personalizationId ? { personalizationId: a.personalizationId } : {}),
  });
  // enqueue even when it existed: the earlier run may have died between insert and enqueue; the job is a no-op once finished
  await ports.enqueueDelivery(id);
  return id;
}
