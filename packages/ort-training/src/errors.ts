/** Every failure this package reports carries a stable code and a message that names the culprit. */
import { CodedError, type ErrorCodes } from '@dynasyn/domain';

export const ORT_TRAINING_CODES = {
  BAD_MODEL: { permanent: true },
  BAD_TENSOR: { permanent: false },
  UNSUPPORTED_DTYPE: { permanent: false },
  MISSING_EXTERNAL_DATA: { permanent: false },
  UNKNOWN_TENSOR: { permanent: false },
  NO_GRADIENT: { permanent: false },
  NOT_SCALAR: { permanent: false },
  SHAPE_INFERENCE: { permanent: false },
  UNSUPPORTED_OP: { permanent: false },
  BAD_ARGUMENT: { permanent: true },
  BAD_STATE: { permanent: false },
} as const satisfies ErrorCodes;
export type OrtTrainingErrorCode = keyof typeof ORT_TRAINING_CODES;

export class OrtTrainingError extends CodedError<OrtTrainingErrorCode> {
  static override readonly codes = ORT_TRAINING_CODES;
}
