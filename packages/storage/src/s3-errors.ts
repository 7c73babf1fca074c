import { StorageError } from './errors.js';

interface AwsLikeError {
  name?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Maps an AWS SDK failure to a StorageError that names the bucket and key. */
export function fromS3Error(err: unknown, bucket: string, key: string | undefined): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? e.Code ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const where = key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`;
  if (name === 'NoSuchBucket') {
    return new StorageError('UNAVAILABLE', `bucket ${bucket} does not exist (${where})`, { cause: err });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new StorageError('NOT_FOUND', `no object at ${where}`, { cause: err });
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || status === 403) {
    return new StorageError('ACCESS_DENIED', `access denied to ${where} (${name || status}): check the credentials and bucket policy`, { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new StorageError('UNAVAILABLE', `S3 request on ${where} failed: ${name ? `${name}: ` : ''}${msg}`, { cause: err });
}
