/**
 * `Idempotency-Key`: the first request with a key runs and its answer is stored; a retry with the same key
 * and the same request gets the stored answer (no second job); the same key with a different request is a 409.
 *
 * The answer is claimed (unique (tenant, key)) after the undoable work (blobs, row) and before the one thing
 * that cannot be taken back (enqueueing): of two racing requests the loser undoes its work and replays the
 * winner's answer, so exactly one job exists. Refused requests store nothing: a corrected retry may reuse the key.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDb, IdempotencyRecord, StoredResponse } from './deps.js';
import { BadRequest, IdempotencyKeyReused } from './errors.js';

export function idempotencyKey(request: FastifyRequest): string | null {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return null;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new BadRequest('Idempotency-Key must be 1-255 visible ASCII characters');
  }
  return key;
}

/** Records `response` as this key's answer; throws LostRace when another request holds the key. */
export type Claim = (response: StoredResponse, personalizationId?: string) => Promise<void>;

class LostRace extends Error {
  constructor(readonly winner: IdempotencyRecord) {
    super('idempotency key taken by a concurrent request');
  }
}

export async function idempotent(
  db: ApiDb,
  request: FastifyRequest,
  reply: FastifyReply,
  requestHash: string,
  handle: (claim: Claim) => Promise<StoredResponse>,
): Promise<FastifyReply> {
  const key = idempotencyKey(request);
  const tenantId = request.tenant.id;
  const replay = (record: IdempotencyRecord) => {
    if (record.requestHash !== requestHash) throw new IdempotencyKeyReused();
    return reply.code(record.response.statusCode).header('idempotent-replayed', 'true').send(record.response.body);
  };
  if (key !== null) {
    const existing = await db.idempotency.find(tenantId, key);
    if (existing) return replay(existing);
  }
  let claimed = false;
  const claim: Claim = async (response, personalizationId) => {
    if (key === null) return;
    const winner = await db.idempotency.claim(tenantId, key, { requestHash, response }, personalizationId);
    if (winner) throw new LostRace(winner);
    claimed = true;
  };
  try {
    const response = await handle(claim);
    return reply.code(response.statusCode).send(response.body);
  } catch (e) {
    if (e instanceof LostRace) return replay(e.winner);
    // The work behind a claimed answer failed (and was undone): free the key for a retry.
    if (claimed && key !== null) await db.idempotency.release(tenantId, key).catch(() => undefined);
    throw e;
  }
}
