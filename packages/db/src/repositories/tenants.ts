import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient, Tenant, ApiKey } from '../generated/client.js';

export interface TenantsRepository {
  /** Creates a tenant with one API key; the key is in the result only, never stored. */
  create(name: string): Promise<{ tenant: Tenant; apiKey: string }>;
  get(id: string): Promise<Tenant | null>;
  /** Adds another key to a tenant; returns it once. */
  createApiKey(tenantId: string, name: string): Promise<{ record: ApiKey; apiKey: string }>;
  /** The tenant owning an unrevoked key, or null; records the key's use (at most once a minute). */
  findByApiKey(apiKey: string): Promise<Tenant | null>;
  revokeApiKey(tenantId: string, apiKeyId: string): Promise<boolean>;
  /** Replaces the webhook signing secret; returns the new `whsec_...`. */
  rotateWebhookSecret(tenantId: string): Promise<string>;
}

/** Key shape `dsk_<32 base64url chars>`: 192 random bits, so a sha256 lookup is enough (no slow hash needed). */
export function generateApiKey(): string {
  return `dsk_${randomBytes(24).toString('base64url')}`;
}

/** Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex');
}

/** Characters of the key kept in clear so users can tell their keys apart. */
const PREFIX_LENGTH = 12;
const TOUCH_INTERVAL_MS = 60_000;

export function createTenantsRepository(prisma: PrismaClient): TenantsRepository {
  const keyData = (name: string) => {
    const apiKey = generateApiKey();
    return { apiKey, data: { name, prefix: apiKey.slice(0, PREFIX_LENGTH), hash: hashApiKey(apiKey) } };
  };
  return {
    async create(name) {
      const { apiKey, data } = keyData('default');
      const tenant = await prisma.tenant.create({
        data: { name, webhookSecret: generateWebhookSecret(), apiKeys: { create: data } },
      });
      return { tenant, apiKey };
    },
    get: (id) => prisma.tenant.findUnique({ where: { id } }),
    async createApiKey(tenantId, name) {
      const { apiKey, data } = keyData(name);
      const record = await prisma.apiKey.create({ data: { ...data, tenantId } });
      return { record, apiKey };
    },
    async findByApiKey(apiKey) {
      const hash = hashApiKey(apiKey);
      const key = await prisma.apiKey.findUnique({ where: { hash }, include: { tenant: true } });
      if (!key || key.revokedAt) return null;
      const now = new Date();
      if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
        await prisma.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: now } });
      }
      return key.tenant;
    },
    async revokeApiKey(tenantId, apiKeyId) {
      const { count } = await prisma.apiKey.updateMany({
        where: { id: apiKeyId, tenantId, revokedAt: null },
        data: { revokedAt: new Date() },
      });
      return count > 0;
    },
    async rotateWebhookSecret(tenantId) {
      const webhookSecret = generateWebhookSecret();
      await prisma.tenant.update({ where: { id: tenantId }, data: { webhookSecret } });
      return webhookSecret;
    },
  };
}
