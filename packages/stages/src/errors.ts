/** A failure no retry can fix (bad input, bad options, a checkpoint of another run): the job fails for good. */
export class PermanentStageError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentStageError';
  }
}

/** The user canceled the personalization; the stage stopped (training at a checkpoint). */
export class StageCanceled extends Error {
  constructor(readonly personalizationId: string) {
    super(`personalization ${personalizationId} was canceled`);
    this.name = 'StageCanceled';
  }
}

const PERMANENT_CODES = new Set([
  // InputError (inputs.ts), ArtifactError, TrainingError, AugmentationError codes that no retry changes
  'UNREADABLE_IMAGE', 'UNREADABLE_MASK', 'SUBJECT_COUNT', 'MASK_SIZE_MISMATCH', 'EMPTY_MASK', 'MASK_COVERS_IMAGE', 'MASKS_OVERLAP',
  'BAD_CLASS_WORD', 'BAD_OPTION', 'BAD_ARTIFACT', 'ARTIFACT_MISMATCH', 'BAD_MODEL', 'BAD_CHECKPOINT', 'BAD_PROMPT', 'BAD_INPUT', 'BAD_ARGUMENT',
]);

/** `{code, message}` of any error, and whether retrying is pointless. */
export function classify(err: unknown): { code: string; message: string; permanent: boolean } {
  if (err instanceof PermanentStageError) return { code: err.code, message: err.message, permanent: true };
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { code, message, permanent: PERMANENT_CODES.has(code) };
}
