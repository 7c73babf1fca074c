import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.js';
import { createArtifactsRepository, type ArtifactsRepository } from './repositories/artifacts.js';
import { createBundlesRepository, type BundlesRepository } from './repositories/bundles.js';
import { fencedWrites, type Fence, type FencedWrites } from './repositories/fence.js';
import { createIdempotencyRepository, type IdempotencyRepository } from './repositories/idempotency.js';
import { createOpsRepository, type OpsRepository } from './repositories/ops.js';
import { createPersonalizationsRepository, type PersonalizationsRepository } from './repositories/personalizations.js';
import { createSamplesRepository, type SamplesRepository } from './repositories/samples.js';
import { createTenantsRepository, type TenantsRepository } from './repositories/tenants.js';
import { createWebhooksRepository, type WebhooksRepository } from './repositories/webhooks.js';

/** The database as the rest of the service sees it: small repositories over one Prisma client. */
export interface Db {
  /**
   * The generated client, for tests' setup and assertions only: the service reads and writes through the
   * repositories (add a method there rather than a query here).
   */
  prisma: PrismaClient;
  tenants: TenantsRepository;
  bundles: BundlesRepository;
  personalizations: PersonalizationsRepository;
  artifacts: ArtifactsRepository;
  samples: SamplesRepository;
  webhooks: WebhooksRepository;
  idempotency: IdempotencyRepository;
  /** Read-only aggregates for operators (/ops, /metrics). */
  ops: OpsRepository;
  /** The writes of one stage attempt, refused once the reconciler took its work over (repositories/fence.ts). */
  fenced(fence: Fence): FencedWrites;
  /**
   * Runs `fn` only if no other process (of any deployment on this database) is running it under the same
   * `lockId`: a Postgres transaction-level advisory lock, held by one pooled connection until `fn` settles
   * (released by Postgres if the process dies). Returns `{ ran: false }` at once when another holder has it.
   */
  exclusively<T>(lockId: number, fn: () => Promise<T>, options?: { timeoutMs?: number }): Promise<{ ran: true; value: T } | { ran: false }>;
  /** Throws when Postgres does not answer (readiness probes). */
  ping(): Promise<void>;
  /** Closes the connection pool; the Db is unusable afterwards. */
  close(): Promise<void>;
}

export interface CreateDbOptions {
  /** Most connections the pool opens; default pg's (10). */
  maxConnections?: number;
}

/** Connects lazily (first query) through `@prisma/adapter-pg`; run `migrate()` first. */
export function createDb(databaseUrl: string, options: CreateDbOptions = {}): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, ...(options.maxConnections ? { max: options.maxConnections } : {}) });
  const prisma = new PrismaClient({ adapter });
  return {
    prisma,
    tenants: createTenantsRepository(prisma),
    bundles: createBundlesRepository(prisma),
    personalizations: createPersonalizationsRepository(prisma),
    artifacts: createArtifactsRepository(prisma),
    samples: createSamplesRepository(prisma),
    webhooks: createWebhooksRepository(prisma),
    idempotency: createIdempotencyRepository(prisma),
    ops: createOpsRepository(prisma),
    fenced: (fence) => fencedWrites(prisma, fence),
    exclusively: <T>(lockId: number, fn: () => Promise<T>, o: { timeoutMs?: number } = {}) =>
      prisma.$transaction(
        async (tx): Promise<{ ran: true; value: T } | { ran: false }> => {
          const [got] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${lockId}::bigint) AS locked`;
          return got?.locked ? { ran: true, value: await fn() } : { ran: false };
        },
        { timeout: o.timeoutMs ?? 120_000, maxWait: 10_000 },
      ),
    async ping() {
      await prisma.$queryRaw`SELECT 1`;
    },
    close: () => prisma.$disconnect(),
  };
}
