import { fileURLToPath } from 'node:url';
import { StorageError } from './errors.js';
import { normalizePrefix } from './keys.js';

export type StorageLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; dir: string };

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/; // S3's naming rules, minus the rarer exceptions

/** Parses 's3://bucket[/prefix]' or 'file:///abs/dir'; anything else is BAD_URL. */
export function parseStorageUrl(url: string): StorageLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StorageError('BAD_URL', `storage URL ${JSON.stringify(url)} is not a URL; use s3://bucket/prefix or file:///abs/dir`);
  }
  if (u.protocol === 's3:') {
    const bucket = u.hostname;
    if (!BUCKET.test(bucket)) {
      throw new StorageError('BAD_URL', `bad bucket name ${JSON.stringify(bucket)} in ${url}: 3-63 of a-z, 0-9, '.', '-'`);
    }
    if (u.search || u.hash || u.username || u.port) throw new StorageError('BAD_URL', `storage URL ${url} must be s3://bucket/prefix, nothing more`);
    // The raw text, not u.pathname: URL would quietly resolve 'a/../b', hiding a mistake in the configuration.
    const prefix = url.slice(`s3://${bucket}`.length).replace(/^\//, '');
    if (prefix !== '' && prefix !== '/') {
      try {
        normalizePrefix(prefix);
      } catch (err) {
        throw new StorageError('BAD_URL', `bad prefix in storage URL ${url}: ${(err as Error).message}`, { cause: err });
      }
    }
    return { kind: 's3', bucket, prefix };
  }
  if (u.protocol === 'file:') {
    if (u.host !== '') throw new StorageError('BAD_URL', `file storage URL ${url} must be file:///absolute/dir (no host)`);
    return { kind: 'file', dir: fileURLToPath(u) };
  }
  throw new StorageError('BAD_URL', `unsupported storage URL ${url}: use s3://bucket/prefix or file:///abs/dir`);
}
