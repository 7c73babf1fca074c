/** Errors of the trainer. `code` is stable (the CLI and the service map it); `message` names the culprit. */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const TRAINING_CODES = {
  /** An AbortSignal stopped training (state: `phase`, `step`, and whether a checkpoint holds it). */
  CANCELLED: { permanent: false },
  /** A checkpoint directory holds a checkpoint of another run (seed, subjects, options) or a damaged one. */
  BAD_CHECKPOINT: { permanent: true },
  /** A training prompt cannot be used (placeholder missing or truncated, class word not found). */
  BAD_PROMPT: { permanent: true },
  /** Inputs that do not fit the backbone (image size, subject count). */
  BAD_INPUT: { permanent: true },
} as const satisfies ErrorCodes;
export type TrainingErrorCode = keyof typeof TRAINING_CODES;

/** For CANCELLED: where training stopped (steps done in that phase) and the checkpoint written there. */
export interface TrainingStopState {
  phase: 1 | 2;
  step: number;
  checkpoint?: string;
}

export class TrainingError extends CodedError<TrainingErrorCode> {
  static override readonly codes = TRAINING_CODES;
  readonly state?: TrainingStopState;

  constructor(code: TrainingErrorCode, message: string, options?: { cause?: unknown; state?: TrainingStopState }) {
    super(code, message, options);
    if (options?.state) this.state = options.state;
  }
}

export const isTrainingError = errorGuard(TrainingError);
