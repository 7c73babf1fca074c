import type { Prisma, PrismaClient, Sample, SampleStatus } from '../generated/client.js';
import { createIdempotently, releaseKey, type IdempotencyInput, type IdempotencyRecord, type Tx } from './idempotency.js';
import type { JobError } from './personalizations.js';

export interface SampleInput {
  /** Chosen by the caller when it must name the row before it exists; default a random uuid. */
  id?: string;
  prompt: string;
  seed: number;
  settings: Prisma.InputJsonValue;
}

export interface SampleUpdate {
  status?: SampleStatus;
  artifactKey?: string | null;
  metrics?: Prisma.InputJsonValue;
  error?: JobError;
}

/** The samples of one request, and where they belong. */
export interface SampleRequest {
  tenantId: string;
  personalizationId: string;
  /** Groups the samples of one request (the `samples.generate` job, the `samples.completed` event). */
  requestId: string;
  items: SampleInput[];
}

export type CreateSamplesResult = { created: true; samples: Sample[]; idempotency: IdempotencyRecord } | { created: false; idempotency: IdempotencyRecord };

export interface SamplesRepository {
  /** Creates the samples of one request (`requestId`), in order; returns them. */
  createMany(tenantId: string, personalizationId: string, requestId: string, items: SampleInput[]): Promise<Sample[]>;
  /**
   * Creates the samples of one request and stores the key's answer in one transaction (idempotency.ts), or
   * nothing and the stored answer when the key was used by the same request first.
   */
  createManyIdempotently(request: SampleRequest, idempotency: IdempotencyInput<Sample[]>): Promise<CreateSamplesResult>;
  /** Replaces the rows of a request by `items` (a re-run that produced a different set), in one transaction. */
  replaceRequest(request: SampleRequest): Promise<Sample[]>;
  /**
   * Undoes a request whose job could not be started: its rows and the answer stored under `idempotencyKey`, in
   * one transaction, so a retry with that key creates them afresh.
   */
  discardRequest(tenantId: string, requestId: string, idempotencyKey?: string): Promise<void>;
  /** The tenant's samples of a personalization, optionally of one prompt, oldest first. */
  list(tenantId: string, personalizationId: string, options?: { prompt?: string }): Promise<Sample[]>;
  /** The samples of one request, for the worker that renders them. */
  listByRequest(requestId: string): Promise<Sample[]>;
  update(id: string, update: SampleUpdate): Promise<Sample>;
  /**
   * Requests with rows still `queued` or `running` and created before `createdBefore`, for the reconciler: one
   * entry per request with all its row ids, in request order.
   */
  listUnfinishedRequests(options: { createdBefore: Date; limit?: number }): Promise<UnfinishedRequest[]>;
  /** Counts one recovery on the unfinished rows of a request; returns the highest count among them. */
  recordRecovery(requestId: string): Promise<number>;
}

/** A request the reconciler looks at. */
export interface UnfinishedRequest {
  tenantId: string;
  personalizationId: string;
  requestId: string;
  /** Every row of the request (done ones included: the generate job skips them). */
  sampleIds: string[];
  /** Most recoveries of its unfinished rows. */
  recoveries: number;
}

/** Inserts a request's rows; one timestamp per row, increasing, so "oldest first" keeps the request's order. */
async function insert(db: Tx | PrismaClient, r: SampleRequest): Promise<Sample[]> {
  const base = Date.now();
  const rows = await db.sample.createManyAndReturn({
    data: r.items.map((item, i) => ({
      ...item,
      tenantId: r.tenantId,
      personalizationId: r.personalizationId,
      requestId: r.requestId,
      createdAt: new Date(base + i),
    })),
  });
  return rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

const inOrder = { orderBy: [{ createdAt: 'asc' as const }, { id: 'asc' as const }] };

export function createSamplesRepository(prisma: PrismaClient): SamplesRepository {
  return {
    createMany: (tenantId, personalizationId, requestId, items) => insert(prisma, { tenantId, personalizationId, requestId, items }),
    async createManyIdempotently(request, idem) {
      const r = await createIdempotently(
        prisma,
        request.tenantId,
        idem,
        (tx) => insert(tx, request),
        () => request.personalizationId,
      );
      return r.created ? { created: true, samples: r.value, idempotency: r.idempotency } : r;
    },
    replaceRequest: (request) =>
      prisma.$transaction(async (tx) => {
        await tx.sample.deleteMany({ where: { requestId: request.requestId } });
        return insert(tx, request);
      }),
    async discardRequest(tenantId, requestId, idempotencyKey) {
      await prisma.$transaction(async (tx) => {
        await releaseKey(tx, tenantId, idempotencyKey);
        await tx.sample.deleteMany({ where: { tenantId, requestId } });
      });
    },
    list: (tenantId, personalizationId, options = {}) =>
      prisma.sample.findMany({ where: { tenantId, personalizationId, ...(options.prompt !== undefined ? { prompt: options.prompt } : {}) }, ...inOrder }),
    listByRequest: (requestId) => prisma.sample.findMany({ where: { requestId }, ...inOrder }),
    update: (id, update) =>
      prisma.sample.update({
        where: { id },
        data: {
          ...(update.status ? { status: update.status } : {}),
          ...(update.artifactKey !== undefined ? { artifactKey: update.artifactKey } : {}),
          ...(update.metrics !== undefined ? { metrics: update.metrics } : {}),
          ...(update.error ? { error: update.error as unknown as Prisma.InputJsonValue } : {}),
        },
      }),
    async listUnfinishedRequests({ createdBefore, limit = 500 }) {
      const open = await prisma.sample.findMany({
        where: { status: { in: ['queued', 'running'] }, createdAt: { lt: createdBefore } },
        distinct: ['requestId'],
        select: { requestId: true },
        take: limit,
      });
      if (!open.length) return [];
      const rows = await prisma.sample.findMany({ where: { requestId: { in: open.map((o) => o.requestId) } }, ...inOrder });
      const byRequest = new Map<string, UnfinishedRequest>();
      for (const r of rows) {
        const entry = byRequest.get(r.requestId) ?? {
          tenantId: r.tenantId,
          personalizationId: r.personalizationId,
          requestId: r.requestId,
          sampleIds: [],
          recoveries: 0,
        };
        entry.sampleIds.push(r.id);
        if (r.status === 'queued' || r.status === 'running') entry.recoveries = Math.max(entry.recoveries, r.recoveries);
        byRequest.set(r.requestId, entry);
      }
      return [...byRequest.values()];
    },
    async recordRecovery(requestId) {
      const where = { requestId, status: { in: ['queued', 'running'] as SampleStatus[] } };
      await prisma.sample.updateMany({ where, data: { recoveries: { increment: 1 } } });
      const top = await prisma.sample.aggregate({ where, _max: { recoveries: true } });
      return top._max.recoveries ?? 0;
    },
  };
}
