/**
 * Uploads for the JSON form of `POST /v1/personalizations`: the client asks for an upload, PUTs the bytes to
 * the URL it gets (presigned, straight to S3; or this API's own path on the local storage backend), then
 * names the upload's id in the create request, which copies the bytes into the personalization and removes
 * the upload. Uploads live under `uploads/<tenant>/<id>`; an unused one stays until the operator's S3
 * lifecycle rule (docs/operations.md) expires it.
 */
import { randomUUID } from 'node:crypto';
import { sniffImageType } from '@dynasyn/imaging';
import type { FastifyInstance } from 'fastify';
import type { ApiConfig } from '../config.js';
import type { ApiDeps } from '../deps.js';
import { EmptyUpload, NotAnImage, NotFound, ValidationError } from '../errors.js';
import { IMAGE_CONTENT_TYPES, readUploadTicket, uploadKey, uploadTicketKey, UUID, type UploadTicket } from '../upload.js';
import { errors, idParams } from './schemas.js';

const uploadSchema = {
  type: 'object',
  required: ['id', 'url', 'method', 'expires_at', 'max_bytes'],
  properties: {
    id: { type: 'string', format: 'uuid', description: 'name it in POST /v1/personalizations (JSON) as image or in masks' },
    url: {
      type: 'string',
      description:
        'where to PUT the bytes: an absolute URL is presigned (send no Authorization header); a path ' + 'is this API (send your Authorization header)',
    },
    method: { type: 'string', enum: ['PUT'] },
    expires_at: { type: 'string', format: 'date-time', description: 'the url works until then' },
    max_bytes: { type: 'integer', description: 'larger uploads are refused when used' },
  },
} as const;

export function uploadRoutes(app: FastifyInstance, deps: ApiDeps, config: ApiConfig): void {
  app.post(
    '/v1/uploads',
    {
      schema: {
        operationId: 'createUpload',
        summary: 'Get a URL to PUT one image or mask to, for the JSON form of POST /v1/personalizations',
        tags: ['uploads'],
        response: { 201: uploadSchema, ...errors(401, 429) },
      },
    },
    async (request, reply) => {
      const id = randomUUID();
      const ttl = config.presignExpiresSeconds;
      const expiresAt = new Date(Date.now() + ttl * 1000).toISOString();
      const ticket: UploadTicket = { expiresAt };
      await deps.storage.put(uploadTicketKey(request.tenant.id, id), Buffer.from(JSON.stringify(ticket)), { contentType: 'application/json' });
      const presigned = await deps.storage.presignPut(uploadKey(request.tenant.id, id), ttl);
      return reply.code(201).send({
        id,
        url: presigned ?? `/v1/uploads/${id}`,
        method: 'PUT',
        expires_at: expiresAt,
        max_bytes: config.maxUploadBytes,
      });
    },
  );

  // The bytes of an upload through the API (the local storage backend has no presigned URLs; it works with
  // S3 too). Any content type: the body is taken as it is, up to the upload limit, and must be an image.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxUploadBytes }, (_request, body, done) => done(null, body));
    scope.put(
      '/v1/uploads/:id',
      {
        schema: {
          operationId: 'putUpload',
          summary: 'Store the bytes of an upload (the url POST /v1/uploads returned, when it is a path)',
          tags: ['uploads'],
          params: idParams,
          consumes: ['image/png', 'image/jpeg', 'image/webp', 'application/octet-stream'],
          body: {
            content: Object.fromEntries(
              ['image/png', 'image/jpeg', 'image/webp', 'application/octet-stream'].map((t) => [t, { schema: { type: 'string', format: 'binary' } }]),
            ),
          },
          response: { 204: { type: 'null' }, ...errors(400, 401, 404, 413, 415) },
        },
        // the body is raw bytes, checked below; the schema only documents it
        validatorCompiler: () => () => true,
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        // (the route's validator is off for the raw body, so the id is checked here)
        if (!UUID.test(id)) throw new ValidationError(`params/id "${id.slice(0, 40)}" is not an upload id (a UUID)`);
        const ticket = await readUploadTicket(deps.storage, request.tenant.id, id);
        if (!ticket) throw new NotFound(`upload ${id} (never issued to this API key's tenant, or already used)`);
        if (Date.parse(ticket.expiresAt) < Date.now()) throw new NotFound(`upload ${id} (its URL expired at ${ticket.expiresAt}; ask for a new upload)`);
        const body = request.body as Buffer | undefined;
        if (!body || body.length === 0) throw new EmptyUpload();
        const type = sniffImageType(body);
        if (!type) throw new NotAnImage('the upload is not a PNG, JPEG or WebP image');
        await deps.storage.put(uploadKey(request.tenant.id, id), body, { contentType: IMAGE_CONTENT_TYPES[type] });
        return reply.code(204).send();
      },
    );
  });
}
