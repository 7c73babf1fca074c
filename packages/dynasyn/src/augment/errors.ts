/**
 * Errors of the augmentation stage. `code` is stable (the CLI and the service map it); `message` names the
 * culprit (endpoint, file, subject, option) and says what was expected. `permanent`: no retry helps.
 */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const AUGMENTATION_CODES = {
  /** The chat endpoint answered with a non-retryable HTTP status, or kept failing after every retry. */
  PROVIDER_HTTP: { permanent: false },
  /** The chat endpoint did not answer within timeoutMs (after every retry). */
  PROVIDER_TIMEOUT: { permanent: false },
  /** The chat endpoint could not be reached (connection refused, DNS, reset), after every retry. */
  PROVIDER_NETWORK: { permanent: false },
  /** The endpoint answered, but not with what was asked (no content, wrong number of phrases, no sentence). */
  MALFORMED_RESPONSE: { permanent: false },
  /** An option or argument is invalid. */
  BAD_ARGUMENT: { permanent: true },
  /** A feature that needs configuration (SAM model folder) was asked for without it. */
  NOT_CONFIGURED: { permanent: true },
  /** A valid request this implementation does not support yet. */
  UNSUPPORTED: { permanent: true },
  /** A saved augmented set is missing files or is malformed. */
  BAD_AUGMENTED_SET: { permanent: false },
} as const satisfies ErrorCodes;
export type AugmentationErrorCode = keyof typeof AUGMENTATION_CODES;

export class AugmentationError extends CodedError<AugmentationErrorCode> {
  static override readonly codes = AUGMENTATION_CODES;
}

export const isAugmentationError = errorGuard(AugmentationError);
