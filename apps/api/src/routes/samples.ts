/** Sampling a succeeded personalization with new prompts, and listing the images. */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ApiConfig } from '../config.js';
import type { ApiDeps, NewSample, Sample } from '../deps.js';
import { checkPrompt, isInputError } from '@dynasyn/dynasyn/inputs';
import { BadPrompt, NotFound, NotSucceeded, ValidationError } from '../errors.js';
import { idempotent } from '../idempotency.js';
import { blobUrl } from '../links.js';
import { paramId } from './personalizations.js';
import { errors, idParams, sampleSchema } from './schemas.js';

/** prompts x seeds images per request at most: one request must not occupy a GPU worker for hours. */
export const MAX_SAMPLES_PER_REQUEST = 64;
const MAX_SEED = 2 ** 31 - 1;

interface SamplesBody {
  prompts: string[];
  seed?: number;
  seeds?: number[];
  steps?: number;
  guidance?: number;
}

export function sampleRoutes(app: FastifyInstance, deps: ApiDeps, config: ApiConfig): void {
  const { db, queues } = deps;

  app.post(
    '/v1/personalizations/:id/samples',
    {
      schema: {
        operationId: 'createSamples',
        summary: 'Generate images of the learned subjects (each prompt with each seed)',
        tags: ['samples'],
        params: idParams,
        body: {
          type: 'object',
          required: ['prompts'],
          additionalProperties: false,
          properties: {
            prompts: { type: 'array', minItems: 1, maxItems: MAX_SAMPLES_PER_REQUEST, items: { type: 'string', minLength: 1, maxLength: 500 } },
            seed: { type: 'integer', minimum: 0, maximum: MAX_SEED },
            seeds: { type: 'array', minItems: 1, maxItems: MAX_SAMPLES_PER_REQUEST, items: { type: 'integer', minimum: 0, maximum: MAX_SEED } },
            steps: { type: 'integer', minimum: 1, maximum: 1000 },
            guidance: { type: 'number', minimum: 0, maximum: 50 },
          },
        },
        response: {
          202: {
            type: 'object',
            required: ['requestId', 'items', 'links'],
            properties: {
              requestId: { type: 'string', description: 'the `requestId` of the samples.completed webhook event for this request' },
              items: { type: 'array', items: sampleSchema },
              links: { type: 'object', additionalProperties: { type: 'string' } },
            },
          },
          ...errors(400, 401, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const id = paramId(request);
      const body = request.body as SamplesBody;
      const tenantId = request.tenant.id;
      // body rules the schema cannot say: VALIDATION_ERROR, like the schema's own
      if (body.seed !== undefined && body.seeds !== undefined) throw new ValidationError('give "seed" or "seeds", not both');
      const seeds = body.seeds ?? (body.seed !== undefined ? [body.seed] : [randomInt(MAX_SEED)]);
      if (body.prompts.length * seeds.length > MAX_SAMPLES_PER_REQUEST) {
        throw new ValidationError(`prompts x seeds is ${body.prompts.length * seeds.length}; at most ${MAX_SAMPLES_PER_REQUEST} images per request`);
      }
      const hash = createHash('sha256')
        .update(`samples:${id}:${JSON.stringify(body)}`)
        .digest('hex');
      return idempotent(db, request, reply, hash, async (key) => {
        const p = await db.personalizations.get(tenantId, id);
        if (!p) throw new NotFound(`personalization ${id}`);
        checkPrompts(body.prompts, p.subjects.length);
        if (p.status !== 'succeeded') throw new NotSucceeded(id, p.status);
        const requestId = randomUUID();
        const rows: NewSample[] = body.prompts.flatMap((prompt) =>
          seeds.map((seed) => ({
            id: randomUUID(),
            requestId,
            tenantId,
            personalizationId: id,
            prompt,
            seed,
            steps: body.steps ?? null,
            guidance: body.guidance ?? null,
          })),
        );
        const answer = async (created: Sample[]) => {
          const items = await Promise.all(created.map((s) => sampleView(deps, config, s)));
          // Dates as strings: the stored answer is JSON and must replay exactly as it was first sent.
          return { statusCode: 202, body: JSON.parse(JSON.stringify({ requestId, items, links: { list: `/v1/samples?personalization=${id}` } })) as unknown };
        };
        const outcome = await db.samples.createMany(rows, { answer, ...(key ? { idempotency: key } : {}) });
        if ('replayed' in outcome) return outcome;
        try {
          await queues.enqueueSamples({ personalizationId: id, tenantId, requestId, sampleIds: rows.map((r) => r.id) });
        } catch (e) {
          await db.samples.discard(tenantId, requestId, key?.key).catch(() => undefined);
          throw e;
        }
        return outcome;
      });
    },
  );

  app.get(
    '/v1/samples',
    {
      schema: {
        operationId: 'listSamples',
        summary: 'Images of a personalization, with their prompts, seeds and metrics',
        tags: ['samples'],
        querystring: {
          type: 'object',
          required: ['personalization'],
          properties: { personalization: { type: 'string', format: 'uuid' }, prompt: { type: 'string', maxLength: 500 } },
        },
        response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: sampleSchema } } }, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const q = request.query as { personalization: string; prompt?: string };
      const tenantId = request.tenant.id;
      const p = await db.personalizations.get(tenantId, q.personalization.toLowerCase());
      if (!p) throw new NotFound(`personalization ${q.personalization}`);
      const samples = await db.samples.list(tenantId, { personalizationId: p.id, ...(q.prompt !== undefined ? { prompt: q.prompt } : {}) });
      return { items: await Promise.all(samples.map((s) => sampleView(deps, config, s))) };
    },
  );
}

/** The sample stage's own check of each prompt (packages/dynasyn checkPrompt), before anything is stored. */
function checkPrompts(prompts: readonly string[], subjects: number): void {
  try {
    prompts.forEach((p, i) => checkPrompt(p, subjects, `prompts[${i}]`));
  } catch (e) {
    if (isInputError(e)) throw new BadPrompt(e.message);
    throw e;
  }
}

async function sampleView(deps: ApiDeps, config: ApiConfig, s: Sample) {
  return {
    id: s.id,
    personalizationId: s.personalizationId,
    prompt: s.prompt,
    seed: s.seed,
    steps: s.steps,
    guidance: s.guidance,
    status: s.status,
    url: s.key ? await blobUrl(deps.storage, s.key, config.presignExpiresSeconds) : null,
    ...(s.metrics ? { metrics: s.metrics } : {}),
    createdAt: s.createdAt,
  };
}
