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
  /**
   * Takes the request over from the job of `epoch` (the fencing token, fence.ts), in one conditional UPDATE of its
   * rows: the epoch moves on for every row (that job's writes are refused from now on), `progressAt` starts again,
   * and with `recovery` one recovery is counted on the unfinished rows. Null, changing nothing, when its rows are
   * no longer at `epoch` (another pass took it over first) or gone.
   */
  supersedeRequest(requestId: string, epoch: number, o: { recovery: boolean }): Promise<{ epoch: number; recoveries: number } | null>;
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
  /** The fencing token of its job (every row has the same). */
  epoch: number;
  /** The latest write of its job to any of its rows; null before its job wrote any. */
  progressAt: Date | null;
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

/** `update` on a client or a transaction's (fence.ts). */
export const updateSampleOn = (
  client: Tx | PrismaClient,
  id: string,
  update: SampleUpdate,
  scope: { requestId?: string; personalizationId?: string } = {},
): Promise<Sample> =>
  client.sample.update({
    where: { id, ...scope },
    data: {
      ...(update.status ? { status: update.status } : {}),
      ...(update.artifactKey !== undefined ? { artifactKey: update.artifactKey } : {}),
      ...(update.metrics !== undefined ? { metrics: update.metrics } : {}),
      ...(update.error ? { error: update.error as unknown as Prisma.InputJsonValue } : {}),
    },
  });

/** `replaceRequest` inside the caller's transaction; the new rows keep the request's epoch (`epoch`, default 0). */
export async function replaceRequestOn(tx: Tx, request: SampleRequest, epoch = 0): Promise<Sample[]> {
  await tx.sample.deleteMany({ where: { requestId: request.requestId } });
  const rows = await insert(tx, request);
  if (epoch === 0) return rows;
  await tx.sample.updateMany({ where: { requestId: request.requestId }, data: { epoch } });
  return rows.map((r) => ({ ...r, epoch }));
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
    replaceRequest: (request) => prisma.$transaction((tx) => replaceRequestOn(tx, request)),
    async discardRequest(tenantId, requestId, idempotencyKey) {
      await prisma.$transaction(async (tx) => {
        await releaseKey(tx, tenantId, idempotencyKey);
        await tx.sample.deleteMany({ where: { tenantId, requestId } });
      });
    },
    list: (tenantId, personalizationId, options = {}) =>
      prisma.sample.findMany({ where: { tenantId, personalizationId, ...(options.prompt !== undefined ? { prompt: options.prompt } : {}) }, ...inOrder }),
    listByRequest: (requestId) => prisma.sample.findMany({ where: { requestId }, ...inOrder }),
    update: (id, update) => updateSampleOn(prisma, id, update),
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
          epoch: r.epoch,
          progressAt: null,
        };
        entry.sampleIds.push(r.id);
        entry.epoch = Math.max(entry.epoch, r.epoch);
        if (r.progressAt && (!entry.progressAt || r.progressAt > entry.progressAt)) entry.progressAt = r.progressAt;
        if (r.status === 'queued' || r.status === 'running') entry.recoveries = Math.max(entry.recoveries, r.recoveries);
        byRequest.set(r.requestId, entry);
      }
      return [...byRequest.values()];
    },
    async supersedeRequest(requestId, epoch, o) {
      const rows = await prisma.$queryRaw<{ epoch: number; recoveries: number; open: boolean }[]>`
        UPDATE "Sample" SET "epoch" = "epoch" + 1, "progressAt" = now() AT TIME ZONE 'UTC',
          "recoveries" = "recoveries" + CASE WHEN ${o.recovery} AND "status" IN ('queued', 'running') THEN 1 ELSE 0 END
        WHERE "requestId" = ${requestId} AND "epoch" = ${epoch}
        RETURNING "epoch", "recoveries", "status" IN ('queued', 'running') AS open`;
      if (!rows.length) return null;
      const open = rows.filter((r) => r.open);
      return { epoch: rows[0]!.epoch, recoveries: Math.max(0, ...(open.length ? open : rows).map((r) => r.recoveries)) };
    },
  };
}
