/** Where a client fetches a blob: a presigned URL when the store has them, else the authenticated API path. */
import { tenantKey, validateKey, type BlobStore } from '@dynasyn/storage';

export const FILES_PREFIX = '/v1/files/';

export async function blobUrl(storage: BlobStore, key: string, ttlSeconds: number): Promise<string> {
  return (await storage.presignGet(key, ttlSeconds)) ?? FILES_PREFIX + key.split('/').map(encodeURIComponent).join('/');
}

/** True when `key` is a valid key under the tenant's personalizations (everything the API hands out). */
export function ownsKey(tenantId: string, key: string): boolean {
  try {
    validateKey(key);
  } catch {
    return false;
  }
  return key.startsWith(`${tenantKey(tenantId, 'personalizations')}/`);
}

export const personalizationLinks = (id: string) => ({
  self: `/v1/personalizations/${id}`,
  cancel: `/v1/personalizations/${id}/cancel`,
  samples: `/v1/samples?personalization=${id}`,
});
