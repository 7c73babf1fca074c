/** Codes of the errors this package throws; callers branch on `code`, never on the message. */
import { CodedError, type ErrorCodes } from '@dynasyn/domain';

export const DB_CODES = {
  MIGRATIONS_DIR_INVALID: { permanent: false },
  MIGRATION_CHECKSUM_MISMATCH: { permanent: false },
  MIGRATION_MISSING_LOCALLY: { permanent: false },
  MIGRATION_PREVIOUSLY_FAILED: { permanent: false },
  MIGRATION_FAILED: { permanent: false },
  MIGRATION_LOCK_TIMEOUT: { permanent: false },
  IDEMPOTENCY_KEY_REUSED: { permanent: false },
  /** A fenced write of a stage attempt whose work the reconciler took over (repositories/fence.ts): never retried. */
  EPOCH_SUPERSEDED: { permanent: true },
} as const satisfies ErrorCodes;
export type DbErrorCode = keyof typeof DB_CODES;

export class DbError extends CodedError<DbErrorCode> {
  static override readonly codes = DB_CODES;
}
