import { CodedError, type ErrorCodes } from '@dynasyn/domain';

export const WEBHOOK_CODES = {
  BAD_SECRET: { permanent: false },
  BAD_SIGNATURE: { permanent: false },
  BAD_URL: { permanent: true },
  FORBIDDEN_ADDRESS: { permanent: true },
  UNKNOWN_DELIVERY: { permanent: false },
} as const satisfies ErrorCodes;
export type WebhookErrorCode = keyof typeof WEBHOOK_CODES;

/** Errors of this package; `code` says which rule was broken. */
export class WebhookError extends CodedError<WebhookErrorCode> {
  static override readonly codes = WEBHOOK_CODES;
}
