/**
 * `Idempotency-Key` over HTTP. The protocol is packages/db's (repositories/idempotency.ts): the rows a create
 * makes and the answer stored under its key commit in one transaction, so a retry with the same key and request
 * replays the first answer (no second job), the same key with another request is a 409, and of two concurrent
 * requests the loser's transaction rolls back and it replays the winner's answer (undoing its own blobs).
 *
 * Here: the header, the replay before any work (a JSON create's uploads are gone on a retry), and the reply.
 * Refused requests store nothing: a corrected retry may reuse the key.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDb, CreateOutcome, IdempotencyRecord } from './deps.js';
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

/** The request's key and hash, for the create's `CreateRequest.idempotency`; undefined without the header. */
export type RequestKey = { key: string; requestHash: string } | undefined;

export async function idempotent(
  db: ApiDb,
  request: FastifyRequest,
  reply: FastifyReply,
  requestHash: string,
  handle: (key: RequestKey) => Promise<CreateOutcome<unknown>>,
): Promise<FastifyReply> {
  const key = idempotencyKey(request);
  const replay = (record: IdempotencyRecord) => {
    if (record.requestHash !== requestHash) throw new IdempotencyKeyReused();
    return reply.code(record.response.statusCode).header('idempotent-replayed', 'true').send(record.response.body);
  };
  if (key !== null) {
    const existing = await db.idempotency.find(request.tenant.id, key);
    if (existing) return replay(existing);
  }
  const outcome = await handle(key === null ? undefined : { key, requestHash });
  if ('replayed' in outcome) return replay(outcome.replayed);
  return reply.code(outcome.response.statusCode).send(outcome.response.body);
}
