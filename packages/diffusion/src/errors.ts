/**
 * Errors raised by @dynasyn/diffusion. `code` is stable (callers and the API map it to responses);
 * `message` names the culprit (file, field, token) and says what was expected. `permanent`: no retry helps.
 */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const DIFFUSION_CODES = {
  /** The bundle directory is missing or is not a model bundle. */
  BAD_BUNDLE: { permanent: true },
  /** A file a bundle or tokenizer needs is not there. */
  MISSING_FILE: { permanent: false },
  /** A config file is malformed or has an unknown / out-of-range value. */
  BAD_CONFIG: { permanent: true },
  /** An ONNX model does not parse or lacks the inputs/outputs the pipeline needs. */
  BAD_MODEL: { permanent: true },
  /** A prompt or class word cannot be used (e.g. encodes to no tokens). */
  BAD_PROMPT: { permanent: true },
  /** A caller passed an invalid argument (shape, range, option). */
  BAD_ARGUMENT: { permanent: true },
  /** A valid request this implementation does not support. */
  UNSUPPORTED: { permanent: true },
} as const satisfies ErrorCodes;
export type DiffusionErrorCode = keyof typeof DIFFUSION_CODES;

export class DiffusionError extends CodedError<DiffusionErrorCode> {
  static override readonly codes = DIFFUSION_CODES;
}

export const isDiffusionError = errorGuard(DiffusionError);
