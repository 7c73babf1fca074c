/** Create, read, cancel and delete personalizations. */
import { randomUUID } from 'node:crypto';
import { tenantKey } from '@dynasyn/storage';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiConfig } from '../config.js';
import type { ApiDeps, Personalization } from '../deps.js';
import { FINAL_STATUSES } from '../deps.js';
import { AlreadyFinished, BadWebhookUrl, NotFound, UnsupportedMediaType } from '../errors.js';
import { idempotent, type RequestKey } from '../idempotency.js';
import { blobUrl, personalizationLinks } from '../links.js';
import { parseJsonCreate, readJsonUploads, readUpload, removeUpload, validateUpload, type PersonalizationUpload, type RawUpload } from '../upload.js';
import { checkWebhookUrl, WebhookError } from '@dynasyn/webhooks';
import { createdSchema, errors, idParams, personalizationSchema } from './schemas.js';

const multipartBody = {
  type: 'object',
  required: ['image', 'mask', 'classes'],
  properties: {
    image: { type: 'string', format: 'binary', description: 'the photo (PNG, JPEG or WebP)' },
    mask: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'one mask per subject, in subject order' },
    classes: { type: 'string', description: 'comma-separated class words, one per mask, same order', example: 'dog,ball' },
    phrase: {
      type: 'array',
      items: { type: 'string', maxLength: 200 },
      description: 'optional: one noun phrase per mask, same order (what each subject is: its colour, pattern, parts)',
      example: ['brown checked dog with a hat', 'red ball'],
    },
    options: {
      type: 'string',
      description:
        'JSON: {"preset": "smoke|tiny|fast|paper", "steps": n, "prompts": [...], "placeholderVectors": 1-16 (embedding rows per placeholder, started from the phrase)}',
    },
    webhook_url: { type: 'string', format: 'uri' },
  },
} as const;

const uploadId = { type: 'string', format: 'uuid', description: 'an upload id from POST /v1/uploads, its bytes PUT to its url' } as const;
const jsonBody = {
  type: 'object',
  required: ['image', 'masks', 'classes'],
  additionalProperties: false,
  properties: {
    image: uploadId,
    masks: { type: 'array', minItems: 1, items: uploadId, description: 'one mask upload per subject, in subject order' },
    classes: {
      anyOf: [
        { type: 'array', items: { type: 'string' } },
        { type: 'string', description: 'comma-separated' },
      ],
      description: 'class words, one per mask, same order',
      example: ['dog', 'ball'],
    },
    phrases: {
      type: 'array',
      items: { type: 'string', maxLength: 200 },
      description: 'optional: one noun phrase per mask, same order',
      example: ['brown checked dog with a hat', 'red ball'],
    },
    options: { type: 'object', description: '{"preset": "smoke|tiny|fast|paper", "steps": n, "prompts": [...], "placeholderVectors": 1-16}' },
    webhook_url: { type: 'string', format: 'uri' },
  },
} as const;

export function personalizationRoutes(app: FastifyInstance, deps: ApiDeps, config: ApiConfig): void {
  const { db, storage } = deps;

  app.post(
    '/v1/personalizations',
    {
      schema: {
        operationId: 'createPersonalization',
        summary: 'Start a personalization from one image and a mask per subject',
        description:
          'multipart/form-data with the files, or JSON naming uploads made through POST /v1/uploads ' +
          '(for large images, or clients that upload straight to object storage); each upload is used once.',
        tags: ['personalizations'],
        consumes: ['multipart/form-data', 'application/json'],
        body: { content: { 'multipart/form-data': { schema: multipartBody }, 'application/json': { schema: jsonBody } } },
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', maxLength: 255 } } },
        response: { 202: createdSchema, ...errors(400, 401, 409, 413, 415, 422, 429) },
      },
      // The body is a multipart stream or JSON checked by the handler (with the API's error codes); the
      // schema above only documents it.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const tenantId = request.tenant.id;
      // the same checks and creation for both forms, once their bytes are read
      const create = async (raw: RawUpload, key: RequestKey) => {
        const upload = await validateUpload(raw, config);
        if (upload.webhookUrl) await checkWebhook(upload.webhookUrl, config.webhookAllowCidrs);
        return createPersonalization(deps, tenantId, upload, key);
      };
      if (!request.isMultipart()) {
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/json')
          throw new UnsupportedMediaType(
            `a ${type || 'body without a content type'} is not accepted: send multipart/form-data with the files, or application/json naming uploads`,
          );
        const req = parseJsonCreate(request.body, config);
        return idempotent(db, request, reply, req.requestHash, async (key) => {
          const created = await create(await readJsonUploads(storage, tenantId, req, config), key);
          if ('replayed' in created) return created;
          // Copied into the personalization's input/: the uploads are used up (a retry replays by its key).
          for (const u of new Set([req.image, ...req.masks])) {
            await removeUpload(storage, tenantId, u).catch((err: Error) => request.log.warn({ upload: u, err: err.message }, 'used upload not removed'));
          }
          return created;
        });
      }
      const raw = await readUpload(request, config);
      return idempotent(db, request, reply, raw.requestHash, (key) => create(raw, key));
    },
  );

  app.get(
    '/v1/personalizations/:id',
    {
      schema: {
        operationId: 'getPersonalization',
        summary: 'Status, per-stage progress, metrics and artifact links',
        tags: ['personalizations'],
        params: idParams,
        response: { 200: personalizationSchema, ...errors(401, 404) },
      },
    },
    async (request) => {
      const id = paramId(request);
      const p = await db.personalizations.get(request.tenant.id, id);
      if (!p) throw new NotFound(`personalization ${id}`);
      return view(deps, config, p);
    },
  );

  app.post(
    '/v1/personalizations/:id/cancel',
    {
      schema: {
        operationId: 'cancelPersonalization',
        summary: 'Cancel: at once when queued, within seconds when a stage is running',
        tags: ['personalizations'],
        params: idParams,
        response: { 202: personalizationSchema, ...errors(401, 404, 409) },
      },
    },
    async (request, reply) => {
      const id = paramId(request);
      const p = await db.personalizations.get(request.tenant.id, id);
      if (!p) throw new NotFound(`personalization ${id}`);
      if (p.status === 'succeeded' || p.status === 'failed') throw new AlreadyFinished(id, p.status);
      const updated = p.status === 'canceled' ? p : await db.personalizations.requestCancel(request.tenant.id, id);
      if (!updated) throw new NotFound(`personalization ${id}`);
      return reply.code(202).send(await view(deps, config, updated));
    },
  );

  app.delete(
    '/v1/personalizations/:id',
    {
      schema: {
        operationId: 'deletePersonalization',
        summary: 'Delete a personalization with its artifacts, samples and uploads',
        tags: ['personalizations'],
        params: idParams,
        response: { 204: { type: 'null' }, ...errors(401, 404) },
      },
    },
    async (request, reply) => {
      const id = paramId(request);
      const tenantId = request.tenant.id;
      const p = await db.personalizations.get(tenantId, id);
      if (!p) throw new NotFound(`personalization ${id}`);
      // A running stage is asked to cancel first (it stops within a poll). The blobs go before the row, so a
      // storage failure leaves a row to DELETE again; they go once more after it, because a stage's upload in
      // flight may land in between. A stage that ends after the row is gone removes the folder itself
      // (packages/stages purgeIfDeleted), so nothing it wrote outlives the personalization.
      const prefix = personalizationPrefix(tenantId, id);
      if (!FINAL_STATUSES.includes(p.status)) await db.personalizations.requestCancel(tenantId, id);
      await storage.deletePrefix(prefix);
      await db.personalizations.delete(tenantId, id);
      await storage
        .deletePrefix(prefix)
        .catch((err: Error) => request.log.warn({ id, err: err.message }, 'second storage cleanup failed; a running stage removes its own writes'));
      return reply.code(204).send();
    },
  );
}

/** The `:id` of a route: a UUID in any case names the same personalization (ids are stored in lowercase). */
export const paramId = (request: FastifyRequest): string => (request.params as { id: string }).id.toLowerCase();

export const personalizationPrefix = (tenantId: string, id: string) => tenantKey(tenantId, 'personalizations', id);

async function checkWebhook(url: string, allowCidrs: readonly string[]): Promise<void> {
  try {
    await checkWebhookUrl(url, { allowCidrs });
  } catch (e) {
    if (e instanceof WebhookError) throw new BadWebhookUrl(e.message);
    throw e;
  }
}

/**
 * Stores the uploads, creates the row (with the idempotency key's answer, in one transaction), then enqueues the
 * flow. Undoes the blobs when the row is not created (refused, or the same request with this key came first:
 * its answer is replayed), and the blobs, the row and the key's answer when the flow cannot be enqueued.
 */
async function createPersonalization(deps: ApiDeps, tenantId: string, upload: PersonalizationUpload, key: RequestKey) {
  const { db, storage, queues } = deps;
  const id = randomUUID();
  const prefix = personalizationPrefix(tenantId, id);
  const imageKey = `${prefix}/input/image.${upload.image.extension}`;
  const subjects = upload.masks.map((m, i) => ({
    classWord: upload.classes[i]!,
    ...(upload.phrases.length ? { nounPhrase: upload.phrases[i]! } : {}),
    maskKey: `${prefix}/input/mask-${i}.${m.extension}`,
  }));
  const answer = (row: Personalization) => ({ statusCode: 202, body: { id, status: row.status, links: personalizationLinks(id) } });
  try {
    await storage.put(imageKey, upload.image.bytes, { contentType: upload.image.contentType });
    for (const [i, m] of upload.masks.entries()) await storage.put(subjects[i]!.maskKey, m.bytes, { contentType: m.contentType });
    const outcome = await db.personalizations.create(
      { id, tenantId, subjects, imageKey, options: upload.options, webhookUrl: upload.webhookUrl },
      { answer, ...(key ? { idempotency: key } : {}) },
    );
    if ('replayed' in outcome) {
      await storage.deletePrefix(prefix).catch(() => undefined);
      return outcome;
    }
    try {
      await queues.enqueuePersonalization({ personalizationId: id, tenantId });
    } catch (e) {
      await db.personalizations.discard(tenantId, id, key?.key).catch(() => undefined);
      throw e;
    }
    return outcome;
  } catch (e) {
    await storage.deletePrefix(prefix).catch(() => undefined);
    throw e;
  }
}

async function view(deps: ApiDeps, config: ApiConfig, p: Personalization) {
  const artifacts = await deps.db.artifacts.list(p.id);
  return {
    id: p.id,
    status: p.status,
    progress: p.progress,
    subjects: p.subjects.map((s) => ({ class: s.classWord, ...(s.nounPhrase !== undefined ? { phrase: s.nounPhrase } : {}) })),
    options: p.options,
    webhookUrl: p.webhookUrl,
    ...(p.metrics ? { metrics: p.metrics } : {}),
    ...(p.error ? { error: p.error } : {}),
    artifacts: await Promise.all(
      artifacts.map(async (a) => ({
        kind: a.kind,
        url: await blobUrl(deps.storage, a.key, config.presignExpiresSeconds),
        size: a.size,
        sha256: a.sha256,
        contentType: a.contentType,
        createdAt: a.createdAt,
      })),
    ),
    cancelRequestedAt: p.cancelRequestedAt,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    links: personalizationLinks(p.id),
  };
}
