/** Why a storage operation failed; callers branch on `code`, people read `message`. */
export type StorageErrorCode =
  | 'NOT_FOUND' // no object under the key
  | 'BAD_KEY' // key or prefix outside the safe alphabet, or trying to escape its root
  | 'CHECKSUM_MISMATCH' // the bytes written do not hash to the sha256 the caller announced
  | 'ACCESS_DENIED' // the credentials may not touch the bucket or object
  | 'UNAVAILABLE' // bucket missing, endpoint unreachable, or another backend failure
  | 'BAD_URL'; // the storage URL cannot be understood

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isStorageError = (err: unknown, code?: StorageErrorCode): err is StorageError =>
  err instanceof StorageError && (code === undefined || err.code === code);
