/** Every failure this package reports carries a stable code and a message that names the culprit. */
export type OrtTrainingErrorCode =
  | 'BAD_MODEL' | 'BAD_TENSOR' | 'UNSUPPORTED_DTYPE' | 'MISSING_EXTERNAL_DATA' | 'UNKNOWN_TENSOR'
  | 'NO_GRADIENT' | 'NOT_SCALAR' | 'SHAPE_INFERENCE' | 'UNSUPPORTED_OP' | 'BAD_ARGUMENT' | 'BAD_STATE';

export class OrtTrainingError extends Error {
  readonly code: OrtTrainingErrorCode;
  constructor(code: OrtTrainingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OrtTrainingError';
    this.code = code;
  }
}
