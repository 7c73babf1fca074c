import { StorageError } from './errors.js';

/**
 * One key segment: a safe alphabet, and never starting with '.', so that '.', '..', hidden files and the
 * local backend's own `.meta`/`.tmp-*` entries can never be named by a key.
 */
const SEGMENT = /^[A-Za-z0-9_=+-][A-Za-z0-9._=+-]*$/;
const MAX_KEY_BYTES = 1024; // S3's own limit on key length

function checkSegments(what: string, value: string, segments: string[]): void {
  for (const s of segments) {
    if (s === '' || !SEGMENT.test(s)) {
      throw new StorageError(
        'BAD_KEY',
        `bad ${what} ${JSON.stringify(value)}: segment ${JSON.stringify(s)} must be non-empty, use only ` +
          `letters, digits and '._=+-', and not start with '.' (no '..', no leading or doubled '/')`,
      );
    }
  }
}

/** Throws BAD_KEY unless `key` is a relative, '/'-separated path of safe segments. */
export function validateKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new StorageError('BAD_KEY', 'empty storage key');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new StorageError('BAD_KEY', `storage key longer than ${MAX_KEY_BYTES} bytes: ${key.slice(0, 64)}...`);
  }
  checkSegments('storage key', key, key.split('/'));
  return key;
}

/**
 * Validates a prefix and returns it in folder form: '' (everything) or ending with '/'.
 * Prefixes are folders, not string prefixes, so `runs/1` never matches `runs/10/...`.
 */
export function normalizePrefix(prefix: string): string {
  if (prefix === '' || prefix === '/') return '';
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  validateKey(trimmed);
  return `${trimmed}/`;
}

/** `tenants/<tenantId>/<parts...>`; every part may hold '/' but must pass the key rules. */
export function tenantKey(tenantId: string, ...parts: string[]): string {
  if (typeof tenantId !== 'string' || tenantId === '' || tenantId.includes('/')) {
    throw new StorageError('BAD_KEY', `bad tenant id ${JSON.stringify(tenantId)}: one non-empty segment`);
  }
  if (parts.length === 0) throw new StorageError('BAD_KEY', 'tenantKey needs at least one part after the tenant id');
  return validateKey(['tenants', tenantId, ...parts].join('/'));
}
