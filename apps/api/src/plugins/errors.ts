/**
 * The one error handler: coded 4xx errors become `{code, message}` with their status; everything else is
 * logged and answered as a bare 500, so stack traces, SQL and storage keys never leave the server.
 */
import type { FastifyError, FastifyInstance } from 'fastify';

/** Fastify's and its plugins' own codes, renamed to the API's vocabulary. */
export const RENAMED: Record<string, string> = {
  FST_REQ_FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  // (a backstop: the upload reader refuses the first mask past MAX_SUBJECTS before the files limit is reached)
  FST_FILES_LIMIT: 'TOO_MANY_SUBJECTS',
  // (a backstop too: the parts limit is the files and fields limits together, so one of them is met first)
  FST_PARTS_LIMIT: 'TOO_MANY_FIELDS',
  FST_FIELDS_LIMIT: 'TOO_MANY_FIELDS',
  // (the create route reads parts only from a multipart body, so this cannot happen either)
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
};

/** Plainer words than the plugins' own ("reach files limit"). */
const MESSAGES: Record<string, string> = {
  FST_FILES_LIMIT: 'too many files: send one "image" and one "mask" per subject (at most MAX_SUBJECTS masks)',
  FST_PARTS_LIMIT: 'too many parts in the multipart body',
  FST_FIELDS_LIMIT: 'too many fields: the form takes "classes", a "phrase" per mask, "options" and "webhook_url" besides the files',
};

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      return reply.code(400).send({ code: 'VALIDATION_ERROR', message: error.message });
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      return reply.code(status).send({ code: 'INTERNAL', message: 'internal error; it has been logged' });
    }
    const code = RENAMED[error.code] ?? error.code ?? 'BAD_REQUEST';
    return reply.code(status).send({ code, message: MESSAGES[error.code] ?? error.message });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }));
}

/** `{code, message}`: the body of every error answer, for response schemas. */
export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;
