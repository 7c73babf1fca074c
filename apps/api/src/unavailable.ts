/**
 * 503 `UNAVAILABLE` with Retry-After: a request that needs the job queue while Redis cannot be reached. The create
 * or sample request has been undone (no row, no blob, no idempotency answer), so the client retries, with the
 * same Idempotency-Key, once Redis is back. The reason (which Redis error) stays in the server's log.
 */
import createError from '@fastify/error';
import type { FastifyInstance } from 'fastify';

/** A guess the client can act on: ioredis retries every 2 s at most, so this is a few of its attempts. */
export const RETRY_AFTER_SECONDS = 5;

/** Thrown by the API's queue port (queues.ts) when an enqueue cannot reach Redis; the message is the reason. */
export const Unavailable = createError('UNAVAILABLE', 'job queue unavailable: %s', 503);

const PUBLIC_MESSAGE = `the job queue is unavailable; nothing was stored: retry in ${RETRY_AFTER_SECONDS} s (the same Idempotency-Key may be reused)`;

/**
 * Answers `Unavailable` in `scope` (the /v1 routes) and hands every other error, rethrown, to the app's error
 * handler (plugins/errors.ts), which answers any other 5xx as a bare INTERNAL.
 */
export function answerUnavailable(scope: FastifyInstance): void {
  scope.setErrorHandler((error, _request, reply) => {
    if (!(error instanceof Unavailable)) throw error;
    return reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send({ code: 'UNAVAILABLE', message: PUBLIC_MESSAGE });
  });
}
