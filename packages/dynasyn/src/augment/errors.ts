/**
 * Errors of the augmentation stage. `code` is stable (the CLI and the service map it); `message` names the
 * culprit (endpoint, file, subject, option) and says what was expected.
 */
export type AugmentationErrorCode =
  /** The chat endpoint answered with a non-retryable HTTP status, or kept failing after every retry. */
  | 'PROVIDER_HTTP'
  /** The chat endpoint did not answer within timeoutMs (after every retry). */
  | 'PROVIDER_TIMEOUT'
  /** The chat endpoint could not be reached (connection refused, DNS, reset), after every retry. */
  | 'PROVIDER_NETWORK'
  /** The endpoint answered, but not with what was asked (no content, wrong number of phrases, no sentence). */
  | 'MALFORMED_RESPONSE'
  /** An option or argument is invalid. */
  | 'BAD_ARGUMENT'
  /** A feature that needs configuration (SAM model folder) was asked for without it. */
  | 'NOT_CONFIGURED'
  /** A valid request this implementation does not support yet. */
  | 'UNSUPPORTED'
  /** A saved augmented set is missing files or is malformed. */
  | 'BAD_AUGMENTED_SET';

export class AugmentationError extends Error {
  readonly code: AugmentationErrorCode;

  constructor(code: AugmentationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AugmentationError';
    this.code = code;
  }
}

export const isAugmentationError = (e: unknown, code?: AugmentationErrorCode): e is AugmentationError =>
  e instanceof AugmentationError && (code === undefined || e.code === code);
