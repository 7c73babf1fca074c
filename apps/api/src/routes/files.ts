/**
 * Blob bytes through the API, for stores without presigned URLs (the local directory backend). Same auth
 * as the rest of /v1; a key outside the caller's tenant prefix is a 404, exactly like a missing one.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { contentTypeFor } from '@dynasyn/storage';
import { NotFound } from '../errors.js';
import { ownsKey } from '../links.js';
import { errors } from './schemas.js';

export function fileRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/v1/files/*',
    {
      schema: {
        operationId: 'getFile',
        summary: 'Download an artifact or sample (local storage backend)',
        tags: ['files'],
        response: { 200: { description: "the object's bytes, with its content type", type: 'string', format: 'binary' }, ...errors(401, 404) },
      },
    },
    async (request, reply) => {
      const key = (request.params as { '*': string })['*'];
      if (!ownsKey(request.tenant.id, key)) throw new NotFound('file');
      const meta = await deps.storage.head(key);
      if (!meta) throw new NotFound('file');
      const stream = await deps.storage.getStream(key);
      return reply
        .type(meta.contentType === 'application/octet-stream' ? contentTypeFor(key) : meta.contentType)
        .header('content-length', meta.size)
        .header('cache-control', 'private, max-age=300')
        .header('x-content-type-options', 'nosniff')
        .send(stream);
    },
  );
}
