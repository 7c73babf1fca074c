/**
 * packages/db seen through the API's port (deps.ts `ApiDb`): its repositories, with rows mapped to the API's
 * shapes. Creates with an `Idempotency-Key` use the repositories' one protocol (rows and answer in one transaction).
 */
import {
  DbError,
  type Db,
  type IdempotencyInput,
  type Personalization as PersonalizationRow,
  type Sample as SampleRow,
  type IdempotencyRecord as StoredKey,
} from '@dynasyn/db';
import type { ApiDb, Artifact, CreateOutcome, CreateRequest, IdempotencyRecord, Personalization, Sample, StageProgress, Subject } from './deps.js';
import { IdempotencyKeyReused } from './errors.js';

type Row = Record<string, unknown>;

export function apiDb(db: Db): ApiDb {
  return {
    tenants: {
      findByApiKey: (key) => db.tenants.findByApiKey(key),
      rotateWebhookSecret: (tenantId) => db.tenants.rotateWebhookSecret(tenantId),
    },
    personalizations: {
      async create(p, request) {
        const input = {
          id: p.id,
          tenantId: p.tenantId,
          subjects: p.subjects,
          imageKey: p.imageKey,
          options: p.options as object,
          webhookUrl: p.webhookUrl,
        };
        const r = await keyReused(db.personalizations.create(input, keyInput(request, toPersonalization)));
        if (!r.created) return { replayed: toIdempotency(r.idempotency) };
        return created(toPersonalization(r.personalization), r.idempotency, request);
      },
      async get(tenantId, id) {
        const row = await db.personalizations.get(tenantId, id);
        return row ? toPersonalization(row) : null;
      },
      async requestCancel(tenantId, id) {
        const row = await db.personalizations.requestCancel(tenantId, id);
        return row ? toPersonalization(row) : null;
      },
      delete: (tenantId, id) => db.personalizations.delete(tenantId, id),
      discard: (tenantId, id, key) => db.personalizations.discard(tenantId, id, key),
    },
    artifacts: {
      async list(personalizationId) {
        const rows = await db.artifacts.list(personalizationId);
        return rows.map((a): Artifact => ({
          id: a.id,
          kind: a.kind,
          key: a.key,
          size: a.size,
          sha256: a.sha256,
          contentType: a.contentType,
          createdAt: a.createdAt,
        }));
      },
    },
    samples: {
      async createMany(samples, request) {
        const first = samples[0];
        if (
          !first ||
          samples.some((s) => s.requestId !== first.requestId || s.personalizationId !== first.personalizationId || s.tenantId !== first.tenantId)
        ) {
          throw new Error('createMany takes the samples of one request');
        }
        const sampleRequest = {
          tenantId: first.tenantId,
          personalizationId: first.personalizationId,
          requestId: first.requestId,
          items: samples.map((s) => ({
            id: s.id,
            prompt: s.prompt,
            seed: s.seed,
            // Only what the client set: the sampler applies its own defaults to absent keys.
            settings: { ...(s.steps !== null ? { steps: s.steps } : {}), ...(s.guidance !== null ? { guidance: s.guidance } : {}) },
          })),
        };
        const toSamples = (rows: SampleRow[]) => rows.map(toSample);
        if (!request.idempotency)
          return created(toSamples(await db.samples.createMany(first.tenantId, first.personalizationId, first.requestId, sampleRequest.items)), null, request);
        const r = await keyReused(db.samples.createManyIdempotently(sampleRequest, keyInput(request, toSamples)!));
        if (!r.created) return { replayed: toIdempotency(r.idempotency) };
        return created(toSamples(r.samples), r.idempotency, request);
      },
      async list(tenantId, q) {
        const rows = await db.samples.list(tenantId, q.personalizationId, q.prompt !== undefined ? { prompt: q.prompt } : {});
        return rows.map(toSample);
      },
      discard: (tenantId, requestId, key) => db.samples.discardRequest(tenantId, requestId, key),
    },
    webhooks: {
      async listDeliveries(tenantId, limit) {
        const rows = await db.webhooks.list(tenantId, { limit });
        return rows.map((d) => ({
          id: d.id,
          eventType: d.eventType,
          url: d.url,
          status: d.status,
          attempts: d.attempts,
          lastStatusCode: d.lastStatusCode,
          lastError: d.lastError,
          createdAt: d.createdAt,
          deliveredAt: d.deliveredAt,
        }));
      },
    },
    idempotency: {
      async find(tenantId, key) {
        const row = await db.idempotency.find(tenantId, key);
        return row ? toIdempotency(row) : null;
      },
    },
    ops: { workSnapshot: (o) => db.ops.workSnapshot(o) },
    ping: () => db.ping(),
  };
}

/** The repository's key input for an API create: its answer, built from the rows mapped to the API's shapes. */
function keyInput<R, T>(request: CreateRequest<T>, map: (rows: R) => T): IdempotencyInput<R> | undefined {
  if (!request.idempotency) return undefined;
  return {
    ...request.idempotency,
    async response(rows) {
      const { statusCode, body } = await request.answer(map(rows));
      return { status: statusCode, body: body as object };
    },
  };
}

/** The answer of what was just created: the stored one when a key was given (the same JSON a replay sends). */
async function created<T>(value: T, stored: StoredKey | null, request: CreateRequest<T>): Promise<CreateOutcome<T>> {
  return { created: value, response: stored ? toIdempotency(stored).response : await request.answer(value) };
}

async function keyReused<T>(creating: Promise<T>): Promise<T> {
  try {
    return await creating;
  } catch (e) {
    if (e instanceof DbError && e.code === 'IDEMPOTENCY_KEY_REUSED') throw new IdempotencyKeyReused();
    throw e;
  }
}

function toPersonalization(r: PersonalizationRow): Personalization {
  return {
    id: r.id,
    tenantId: r.tenantId,
    status: r.status,
    progress: (Array.isArray(r.progress) ? r.progress : []) as unknown as StageProgress[],
    subjects: (Array.isArray(r.subjects) ? r.subjects : []) as unknown as Subject[],
    imageKey: r.imageKey,
    options: (r.options ?? {}) as Row,
    webhookUrl: r.webhookUrl,
    metrics: (r.metrics ?? null) as Row | null,
    error: (r.error ?? null) as Personalization['error'],
    cancelRequestedAt: r.cancelRequestedAt,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function toSample(r: SampleRow): Sample {
  const settings = (r.settings ?? {}) as { steps?: number | null; guidance?: number | null };
  return {
    id: r.id,
    personalizationId: r.personalizationId,
    prompt: r.prompt,
    seed: r.seed,
    steps: settings.steps ?? null,
    guidance: settings.guidance ?? null,
    status: r.status,
    key: r.artifactKey,
    metrics: (r.metrics ?? null) as Row | null,
    createdAt: r.createdAt,
  };
}

const toIdempotency = (r: { requestHash: string; responseStatus: number; responseBody: unknown }): IdempotencyRecord => ({
  requestHash: r.requestHash,
  response: { statusCode: r.responseStatus, body: r.responseBody },
});
