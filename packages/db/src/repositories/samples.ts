import type { Prisma, PrismaClient, Sample, SampleStatus } from '../generated/client.js';
import type { JobError } from './personalizations.js';

export interface SampleInput {
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

export interface SamplesRepository {
  /** Creates the samples of one request (`requestId`), in order; returns them. */
  createMany(tenantId: string, personalizationId: string, requestId: string, items: SampleInput[]): Promise<Sample[]>;
  /** The tenant's samples of a personalization, optionally of one prompt, oldest first. */
  list(tenantId: string, personalizationId: string, options?: { prompt?: string }): Promise<Sample[]>;
  /** The samples of one request, for the worker that renders them. */
  listByRequest(requestId: string): Promise<Sample[]>;
  update(id: string, update: SampleUpdate): Promise<Sample>;
}

export function createSamplesRepository(prisma: PrismaClient): SamplesRepository {
  return {
    async createMany(tenantId, personalizationId, requestId, items) {
      // One timestamp per row, increasing, so "oldest first" keeps the request's order.
      const base = Date.now();
      return prisma.sample.createManyAndReturn({
        data: items.map((item, i) => ({ ...item, tenantId, personalizationId, requestId, createdAt: new Date(base + i) })),
      });
    },
    list: (tenantId, personalizationId, options = {}) =>
      prisma.sample.findMany({
        where: { tenantId, personalizationId, ...(options.prompt !== undefined ? { prompt: options.prompt } : {}) },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      }),
    listByRequest: (requestId) => prisma.sample.findMany({ where: { requestId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
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
  };
}
