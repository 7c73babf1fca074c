/**
 * packages/db seen through the API's port (deps.ts `ApiDb`): its repositories, plus tenant-scoped Prisma
 * queries where the API needs ids it chose itself (storage keys contain them before the row exists).
 */
import type { Db } from '@dynasyn/db';
import type { ApiDb, Artifact, IdempotencyRecord, Personalization, Sample, StageProgress, Subject } from './deps.js';

type Row = Record<string, unknown>;

export function apiDb(db: Db): ApiDb {
  const { prisma } = db;
  return {
    tenants: {
      findByApiKey: (key) => db.tenants.findByApiKey(key),
      rotateWebhookSecret: (tenantId) => db.tenants.rotateWebhookSecret(tenantId),
    },
    personalizations: {
      async create(p) {
        const row = await prisma.personalization.create({
          data: {
            id: p.id,
            tenantId: p.tenantId,
            subjects: p.subjects as unknown as object[],
            imageKey: p.imageKey,
            options: p.options as object,
            webhookUrl: p.webhookUrl,
          },
        });
        return toPersonalization(row);
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
    },
    artifacts: {
      async list(personalizationId) {
        const rows = await db.artifacts.list(personalizationId);
        return rows.map(
          (a): Artifact => ({ id: a.id, kind: a.kind, key: a.key, size: a.size, sha256: a.sha256, contentType: a.contentType, createdAt: a.createdAt }),
        );
      },
    },
    samples: {
      async createMany(samples) {
        await prisma.sample.createMany({
          data: samples.map((s) => ({
            id: s.id,
            tenantId: s.tenantId,
            personalizationId: s.personalizationId,
            requestId: s.requestId,
            prompt: s.prompt,
            seed: s.seed,
            // Only what the client set: the sampler applies its own defaults to absent keys.
            settings: { ...(s.steps !== null ? { steps: s.steps } : {}), ...(s.guidance !== null ? { guidance: s.guidance } : {}) },
          })),
        });
        const rows = await prisma.sample.findMany({ where: { id: { in: samples.map((s) => s.id) } }, orderBy: { createdAt: 'asc' } });
        const order = new Map(samples.map((s, i) => [s.id, i]));
        return rows.map(toSample).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      },
      async list(tenantId, q) {
        const rows = await db.samples.list(tenantId, q.personalizationId, q.prompt !== undefined ? { prompt: q.prompt } : {});
        return rows.map(toSample);
      },
      async deleteMany(ids) {
        await prisma.sample.deleteMany({ where: { id: { in: ids } } });
      },
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
      async claim(tenantId, key, record, personalizationId) {
        const { saved, record: stored } = await db.idempotency.save({
          tenantId,
          key,
          requestHash: record.requestHash,
          responseStatus: record.response.statusCode,
          responseBody: record.response.body as object,
          personalizationId: personalizationId ?? null,
        });
        return saved ? null : toIdempotency(stored);
      },
      async release(tenantId, key) {
        await prisma.idempotencyKey.deleteMany({ where: { tenantId, key } });
      },
    },
    async ping() {
      await prisma.$queryRawUnsafe('SELECT 1');
    },
  };
}

function toPersonalization(r: {
  id: string; tenantId: string; status: string; progress: unknown; subjects: unknown; imageKey: string; options: unknown;
  webhookUrl: string | null; metrics: unknown; error: unknown; cancelRequestedAt: Date | null; createdAt: Date; updatedAt: Date;
}): Personalization {
  return {
    id: r.id,
    tenantId: r.tenantId,
    status: r.status as Personalization['status'],
    progress: (Array.isArray(r.progress) ? r.progress : []) as StageProgress[],
    subjects: (Array.isArray(r.subjects) ? r.subjects : []) as Subject[],
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

function toSample(r: {
  id: string; personalizationId: string; prompt: string; seed: number; settings: unknown; status: string; artifactKey: string | null;
  metrics: unknown; createdAt: Date;
}): Sample {
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
