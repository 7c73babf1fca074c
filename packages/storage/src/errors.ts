/** Why a storage operation failed; callers branch on `code`, people read `message`. */
import { CodedError, errorGuard, type ErrorCodes } from '@dynasyn/domain';

export const STORAGE_CODES = {
  NOT_FOUND: { permanent: false }, // no object under the key
  BAD_KEY: { permanent: true }, // key or prefix outside the safe alphabet, or trying to escape its root
  CHECKSUM_MISMATCH: { permanent: false }, // the bytes written do not hash to the sha256 the caller announced
  ACCESS_DENIED: { permanent: false }, // the credentials may not touch the bucket or object
  UNAVAILABLE: { permanent: false }, // bucket missing, endpoint unreachable, or another backend failure
  BAD_URL: { permanent: true }, // the storage URL cannot be understood
} as const satisfies ErrorCodes;
export type StorageErrorCode = keyof typeof STORAGE_CODES;

export class StorageError extends CodedError<StorageErrorCode> {
  static override readonly codes = STORAGE_CODES;
}

export const isStorageError = errorGuard(StorageError);
