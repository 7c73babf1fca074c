/**
 * The one `Idempotency-Key` protocol of the service: the rows a request creates and the answer stored under its
 * key are committed in one transaction. A retry of the same request finds the key and gets the stored answer,
 * creating nothing; a different request with the key is refused (`IDEMPOTENCY_KEY_REUSED`); of two concurrent
 * requests with one key, the loser's insert of the key waits on the unique (tenant, key) index, fails when the
 * winner commits, and its whole transaction (its rows too) rolls back: it then replays the winner's answer.
 */
import type { IdempotencyKey, Prisma, PrismaClient } from '../generated/client.js';
import { DbError } from '../errors.js';
import { isUniqueViolation } from './prisma-errors.js';

export type IdempotencyRecord = IdempotencyKey;

const findKey = (prisma: PrismaClient, tenantId: string, key: string) => prisma.idempotencyKey.findUnique({ where: { tenantId_key: { tenantId, key } } });

/** A transaction's client: what the work inside `createIdempotently` runs its queries on. */
export type Tx = Prisma.TransactionClient;

/** An `Idempotency-Key` to store, in the same transaction, with the rows a request creates. */
export interface IdempotencyInput<T> {
  key: string;
  /** Hash of the request; the same key with a different request is refused (`IDEMPOTENCY_KEY_REUSED`). */
  requestHash: string;
  /** The response to replay for this key, built from what was created (inside the transaction: keep it quick). */
  response: (created: T) => { status: number; body: Prisma.InputJsonValue } | Promise<{ status: number; body: Prisma.InputJsonValue }>;
}

/** What was created with the key's stored answer, or (nothing created) the answer stored by the same request earlier. */
export type IdempotentResult<T> = { created: true; value: T; idempotency: IdempotencyRecord } | { created: false; idempotency: IdempotencyRecord };

/** Keys are written only by the creates that store them (`createIdempotently`); this reads them. */
export interface IdempotencyRepository {
  /** The answer stored under a tenant's key, for a replay before any work is done; null when the key is new. */
  find(tenantId: string, key: string): Promise<IdempotencyRecord | null>;
}

/**
 * Runs `create` and stores `idem`'s answer in one transaction (see the file header). `personalizationOf` names
 * the personalization the key's answer is about (the key outlives it: deleting it only unlinks the key).
 */
export async function createIdempotently<T>(
  prisma: PrismaClient,
  tenantId: string,
  idem: IdempotencyInput<T>,
  create: (tx: Tx) => Promise<T>,
  personalizationOf: (created: T) => string | null,
): Promise<IdempotentResult<T>> {
  const replay = async (): Promise<IdempotentResult<T> | null> => {
    const existing = await findKey(prisma, tenantId, idem.key);
    if (!existing) return null;
    if (existing.requestHash !== idem.requestHash) {
      throw new DbError('IDEMPOTENCY_KEY_REUSED', `idempotency key "${idem.key}" was already used for a different request`);
    }
    return { created: false, idempotency: existing };
  };
  const earlier = await replay();
  if (earlier) return earlier;
  try {
    return await prisma.$transaction(async (tx) => {
      const value = await create(tx);
      const response = await idem.response(value);
      const idempotency = await tx.idempotencyKey.create({
        data: {
          tenantId,
          key: idem.key,
          requestHash: idem.requestHash,
          personalizationId: personalizationOf(value),
          responseStatus: response.status,
          responseBody: response.body,
        },
      });
      return { created: true as const, value, idempotency };
    });
  } catch (err) {
    // A concurrent request with the same key committed first: ours rolled back whole, replay theirs.
    if (isUniqueViolation(err)) {
      const winner = await replay();
      if (winner) return winner;
    }
    throw err;
  }
}

/** Deletes a key's stored answer, inside the transaction that undoes what the key's request created. */
export async function releaseKey(tx: Tx, tenantId: string, key: string | undefined): Promise<void> {
  if (key !== undefined) await tx.idempotencyKey.deleteMany({ where: { tenantId, key } });
}

export function createIdempotencyRepository(prisma: PrismaClient): IdempotencyRepository {
  return { find: (tenantId, key) => findKey(prisma, tenantId, key) };
}
