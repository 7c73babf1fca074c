/** API keys: `Authorization: Bearer <key>`, looked up by sha256 (keys are stored hashed, never in clear). */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ApiDb, Tenant } from '../deps.js';
import { Unauthorized } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's tenant; set on every /v1 route before its handler runs. */
    tenant: Tenant;
  }
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** The bearer token of a request, or null. */
export function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

export function authenticate(db: ApiDb) {
  return async (request: FastifyRequest): Promise<void> => {
    const key = bearer(request);
    if (!key || key.length > 200) throw new Unauthorized();
    const tenant = await db.tenants.findByApiKey(key);
    if (!tenant) throw new Unauthorized();
    request.tenant = tenant;
  };
}
