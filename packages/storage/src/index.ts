import { LocalBlobStore } from './local.js';
import { S3BlobStore, createS3Client } from './s3.js';
import type { BlobStore, BlobStoreOptions } from './types.js';
import { parseStorageUrl } from './url.js';

export type { BlobBody, BlobInfo, BlobStore, BlobStoreOptions, PutOptions, S3Options } from './types.js';
export { StorageError, isStorageError, type StorageErrorCode } from './errors.js';
export { contentTypeFor } from './content-type.js';
export { tenantKey, validateKey, normalizePrefix } from './keys.js';
export { parseStorageUrl, type StorageLocation } from './url.js';
export { LocalBlobStore } from './local.js';
export { S3BlobStore, createS3Client, PART_SIZE } from './s3.js';

/** A blob store for 's3://bucket/prefix' (with `options.s3`) or 'file:///abs/dir'. */
export function createBlobStore(url: string, options: BlobStoreOptions = {}): BlobStore {
  const loc = parseStorageUrl(url);
  if (loc.kind === 'file') return new LocalBlobStore(loc.dir);
  return new S3BlobStore(createS3Client(options.s3), loc.bucket, loc.prefix);
}
