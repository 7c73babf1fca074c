/** The events a tenant's webhook_url receives (DESIGN.md "Service contracts"). */
export const WEBHOOK_EVENTS = ['personalization.training.completed', 'personalization.failed', 'samples.completed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** The JSON body of a delivery. */
export interface WebhookPayload {
  type: WebhookEventType;
  /** ISO time the event happened (not the attempt). */
  timestamp: string;
  data: { id: string; status: string } & Record<string, unknown>;
}

export function webhookPayload(type: WebhookEventType, data: WebhookPayload['data'], at: Date = new Date()): WebhookPayload {
  return { type, timestamp: at.toISOString(), data };
}
