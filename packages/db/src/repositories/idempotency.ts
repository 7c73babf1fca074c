import type { IdempotencyKey, Prisma, PrismaClient } from '../generated/client.js';
import { isUniqueViolation } from './prisma-errors.js';

export type IdempotencyRecord = IdempotencyKey;

export interface SaveIdempotencyInput {
  tenantId: string;
  key: string;
  requestHash: string;
  personalizationId?: string | null;
  responseStatus: number;
  responseBody: Prisma.InputJsonValue;
}

export interface IdempotencyRepository {
  find(tenantId: string, key: string): Promise<IdempotencyRecord | null>;
  /** Stores the response for a key; when the key is already taken, returns the stored record instead (compare its requestHash). */
  save(input: SaveIdempotencyInput): Promise<{ saved: boolean; record: IdempotencyRecord }>;
}

export function createIdempotencyRepository(prisma: PrismaClient): IdempotencyRepository {
  const find = (tenantId: string, key: string) => prisma.idempotencyKey.findUnique({ where: { tenantId_key: { tenantId, key } } });
  return {
    find,
    async save(input) {
      try {
        return { saved: true, record: await prisma.idempotencyKey.create({ data: input }) };
      } catch (err) {
        const existing = isUniqueViolation(err) ? await find(input.tenantId, input.key) : null;
        if (existing) return { saved: false, record: existing };
        throw err;
      }
    },
  };
}
