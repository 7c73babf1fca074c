export { WebhookError, type WebhookErrorCode } from './errors.js';
export { WEBHOOK_EVENTS, webhookPayload, type WebhookEventType, type WebhookPayload } from './events.js';
export { generateWebhookSecret, signWebhook, verifyWebhook, webhookHeaders, type VerifyOptions } from './signing.js';
export {
  checkWebhookPort,
  checkWebhookUrl,
  forbiddenReason,
  guardedLookup,
  isForbiddenAddress,
  LOOPBACK_CIDRS,
  parseAllowCidrs,
  parseWebhookUrl,
  systemResolver,
  type AddressPolicy,
  type GuardOptions,
  type Resolver,
} from './ssrf.js';
export {
  createDeliverJobHandler,
  DEFAULT_SCHEDULE_MS,
  deliverOnce,
  deliverWithRetries,
  postWebhook,
  retryDelayMs,
  type AttemptOutcome,
  type AttemptRecord,
  type DeliverResult,
  type DeliveryPolicy,
  type DeliveryRecord,
  type DeliveryStore,
} from './delivery.js';
export { deliveryId, notify, type NotifyArgs, type NotifyPorts } from './notify.js';
export { deliveryStoreFrom, notifyPortsFrom } from './db-store.js';
export { scheduleWebhookSweep, startWebhookWorker, sweepLostDeliveries, type SweepOptions, type SweepResult, type WebhookWorkerOptions } from './sweep.js';
