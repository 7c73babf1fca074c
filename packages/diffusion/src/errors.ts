/**
 * Errors raised by @dynasyn/diffusion. `code` is stable (callers and the API map it to responses);
 * `message` names the culprit (file, field, token) and says what was expected.
 */
export type DiffusionErrorCode =
  /** The bundle directory is missing or is not a model bundle. */
  | 'BAD_BUNDLE'
  /** A file a bundle or tokenizer needs is not there. */
  | 'MISSING_FILE'
  /** A config file is malformed or has an unknown / out-of-range value. */
  | 'BAD_CONFIG'
  /** An ONNX model does not parse or lacks the inputs/outputs the pipeline needs. */
  | 'BAD_MODEL'
  /** A prompt or class word cannot be used (e.g. encodes to no tokens). */
  | 'BAD_PROMPT'
  /** A caller passed an invalid argument (shape, range, option). */
  | 'BAD_ARGUMENT'
  /** A valid request this implementation does not support. */
  | 'UNSUPPORTED';

export class DiffusionError extends Error {
  readonly code: DiffusionErrorCode;

  constructor(code: DiffusionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiffusionError';
    this.code = code;
  }
}

export const isDiffusionError = (e: unknown, code?: DiffusionErrorCode): e is DiffusionError =>
  e instanceof DiffusionError && (code === undefined || e.code === code);
