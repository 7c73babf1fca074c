export { createDb, type Db, type CreateDbOptions } from './client.js';
export { migrate, migrateCommand, readMigrations, migrationChecksum, defaultMigrationsDir } from './migrate.js';
export type { MigrateOptions, MigrateCommandOptions, LocalMigration } from './migrate.js';
export { DbError, type DbErrorCode } from './errors.js';
export { canTransition, isTerminal, statusesLeadingTo, RUNNING_ORDER, TERMINAL_STATUSES } from './status.js';
export { createScratchDatabase, type ScratchDatabase } from './scratch.js';
export { generateApiKey, generateWebhookSecret, hashApiKey, type TenantsRepository } from './repositories/tenants.js';
export type { BundlesRepository, BundleInput } from './repositories/bundles.js';
export type {
  PersonalizationsRepository,
  CreatePersonalizationInput,
  CreatePersonalizationResult,
  StatusUpdate,
  SubjectRecord,
  StageProgress,
  JobError,
} from './repositories/personalizations.js';
export type { ArtifactsRepository, ArtifactInput, ArtifactRecord } from './repositories/artifacts.js';
export type { SamplesRepository, SampleInput, SampleRequest, SampleUpdate, CreateSamplesResult, UnfinishedRequest } from './repositories/samples.js';
export type { WebhooksRepository, DeliveryInput, AttemptResult } from './repositories/webhooks.js';
export type { Fence, FencedWrites } from './repositories/fence.js';
export { RUNNING_STAGE_STATUSES, type OpsRepository, type RunningStageStatus, type WorkSnapshot } from './repositories/ops.js';
export type { IdempotencyRepository, IdempotencyRecord, IdempotencyInput, IdempotentResult } from './repositories/idempotency.js';
export { Prisma, PrismaClient } from './generated/client.js';
export type { Tenant, ApiKey, ModelBundle, Personalization, Artifact, Sample, WebhookDelivery, IdempotencyKey } from './generated/client.js';
export { PersonalizationStatus, ArtifactKind, SampleStatus, WebhookDeliveryStatus } from './generated/enums.js';
