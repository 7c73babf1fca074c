export type WebhookErrorCode = 'BAD_SECRET' | 'BAD_SIGNATURE' | 'BAD_URL' | 'FORBIDDEN_ADDRESS' | 'UNKNOWN_DELIVERY';

/** Errors of this package; `code` says which rule was broken. */
export class WebhookError extends Error {
  constructor(readonly code: WebhookErrorCode, message: string) {
    super(message);
    this.name = 'WebhookError';
  }
}
