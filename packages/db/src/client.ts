import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.js';
import { createArtifactsRepository, type ArtifactsRepository } from './repositories/artifacts.js';
import { createBundlesRepository, type BundlesRepository } from './repositories/bundles.js';
import { createIdempotencyRepository, type IdempotencyRepository } from './repositories/idempotency.js';
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
    async ping() {
      await prisma.$queryRaw`SELECT 1`;
    },
    close: () => prisma.$disconnect(),
  };
}
