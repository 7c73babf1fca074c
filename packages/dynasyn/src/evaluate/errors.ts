/** Errors of `dynasyn evaluate`: `code` is stable (the CLI prints it), `message` names the file and field. */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const EVALUATION_CODES = {
  /** The protocol file is missing, not JSON, or a field is wrong (the message lists every bad field). */
  BAD_PROTOCOL: { permanent: true },
  /** A file or model the protocol names is not there (backbone, CLIP, scene image, judge). */
  MISSING_INPUT: { permanent: false },
  /** The output directory's ledger holds a run of the same name made with other settings. */
  LEDGER_MISMATCH: { permanent: true },
  /** A scorer the protocol asks for cannot be loaded. */
  SCORER_UNAVAILABLE: { permanent: false },
} as const satisfies ErrorCodes;
export type EvaluationErrorCode = keyof typeof EVALUATION_CODES;

export class EvaluationError extends CodedError<EvaluationErrorCode> {
  static override readonly codes = EVALUATION_CODES;
}

export const isEvaluationError = errorGuard(EvaluationError);
