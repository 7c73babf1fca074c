/** Errors of the trainer. `code` is stable (the CLI and the service map it); `message` names the culprit. */
export type TrainingErrorCode =
  /** An AbortSignal stopped training (state: `phase`, `step`, and whether a checkpoint holds it). */
  | 'CANCELLED'
  /** A checkpoint directory holds a checkpoint of another run (seed, subjects, options) or a damaged one. */
  | 'BAD_CHECKPOINT'
  /** A training prompt cannot be used (placeholder missing or truncated, class word not found). */
  | 'BAD_PROMPT'
  /** Inputs that do not fit the backbone (image size, subject count). */
  | 'BAD_INPUT';

export class TrainingError extends Error {
  readonly code: TrainingErrorCode;
  /** For CANCELLED: where training stopped (steps done in that phase) and the checkpoint written there. */
  readonly state?: { phase: 1 | 2; step: number; checkpoint?: string };

  constructor(code: TrainingErrorCode, message: string, options?: { cause?: unknown; state?: { phase: 1 | 2; step: number; checkpoint?: string } }) {
    super(message, options);
    this.name = 'TrainingError';
    this.code = code;
    if (options?.state) this.state = options.state;
  }
}

export const isTrainingError = (e: unknown, code?: TrainingErrorCode): e is TrainingError =>
  e instanceof TrainingError && (code === undefined || e.code === code);
