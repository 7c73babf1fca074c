import { CodedError } from '@dynasyn/domain';

/**
 * A failure no retry can fix (bad input, bad options, a checkpoint of another run): the job fails for good.
 * Its code is free-form (STAGE_ORDER, or the code of the error it wraps), so it has no table: it is permanent
 * by definition.
 */
export class PermanentStageError extends CodedError<string> {
  override get permanent(): boolean {
    return true;
  }
}

/**
 * The reconciler took this attempt's work over (its epoch, the fencing token, moved on: packages/db fence.ts): the
 * attempt stops, writes nothing more (its writes are refused anyway) and its job fails without a retry; the work
 * goes on under the new epoch's job. Permanent, with code STAGE_SUPERSEDED.
 */
export class StageSuperseded extends PermanentStageError {
  constructor(what: string, epoch: number, options?: { cause?: unknown }) {
    super('STAGE_SUPERSEDED', `${what}: this attempt (epoch ${epoch}) was taken over by the reconciler; it stops without writing`, options);
  }
}

/** The user canceled the personalization; the stage stopped (training at a checkpoint). */
export class StageCanceled extends Error {
  constructor(readonly personalizationId: string) {
    super(`personalization ${personalizationId} was canceled`);
    this.name = 'StageCanceled';
  }
}

/**
 * `{code, message}` of any error, and whether retrying is pointless: a CodedError says so itself (its package's
 * code table); anything else (a crash, a network error, a Node system error) is retried.
 */
export function classify(err: unknown): { code: string; message: string; permanent: boolean } {
  if (err instanceof CodedError) return { code: err.code, message: err.message, permanent: err.permanent };
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { code, message, permanent: false };
}
