/**
 * The queue catalogs: the contract between the API (producer) and the workers (consumers).
 * One catalog per queue maps `domain.verb` job names to a payload schema, a retry policy and a deterministic
 * job id. Payloads carry ids and storage keys plus a version field, never image bytes or secrets: they sit in
 * Redis in clear and are parsed again on pickup as untrusted data.
 */
import { z } from 'zod';
import type { BackoffOptions } from 'bullmq';

/** Attempts and backoff for failures a retry may fix (UnrecoverableError skips the remaining attempts). */
export interface RetryPolicy {
  /** Total number of tries, the first included. */
  readonly attempts: number;
  /** Delay before each retry. */
  readonly backoff: BackoffOptions;
}

/** One job kind of a queue. */
export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  /** Payload schema; the producer validates before enqueueing and the worker again on pickup. */
  readonly payload: S;
  /** Retry policy applied as BullMQ job options at enqueue. */
  readonly retry: RetryPolicy;
  /** Deterministic job id: enqueueing a payload whose id already exists is a no-op (idempotency). */
  readonly jobId: (payload: z.output<S>) => string;
}

/** A queue and its job kinds; catalogs are written `as const satisfies QueueCatalog`. */
export interface QueueCatalog {
  /** BullMQ queue name (no ':'). */
  readonly queue: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry keeps its own schema type
  readonly jobs: Readonly<Record<string, JobDefinition<any>>>;
}

/** Declares one job kind with its payload type flowing into `jobId`. */
export function defineJob<S extends z.ZodType>(definition: JobDefinition<S>): JobDefinition<S> {
  return definition;
}

/**
 * Ids travel inside BullMQ job ids, where ':' is reserved, and into storage keys: keep them to a safe alphabet
 * (UUIDs, cuids, nanoids all fit).
 */
export const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'ids are 1-128 characters of [A-Za-z0-9_-]');

/**
 * Payload version. Defaults to 1 on the producer side so callers may omit it; a future v2 becomes a
 * discriminated union here and old jobs still parse.
 */
const version = z.literal(1).default(1);

/**
 * The fencing token of a stage attempt (packages/db fence.ts): the row's epoch when the job was enqueued. Absent
 * means 0 (the API's jobs); the reconciler's takeovers and recoveries enqueue under the row's next epoch, and a
 * handler whose epoch is not the row's any more stops without writing.
 */
const epoch = z.number().int().min(0).max(1_000_000).optional();

/** Every stage of one personalization: the stage reads its inputs from Postgres and storage by these ids. */
export const personalizationPayload = z.strictObject({ v: version, personalizationId: idSchema, tenantId: idSchema, epoch });
export type PersonalizationPayload = z.output<typeof personalizationPayload>;

/** Samples requested after training (POST /v1/personalizations/:id/samples); the rows exist before enqueue. */
export const samplesGeneratePayload = z.strictObject({
  v: version,
  personalizationId: idSchema,
  tenantId: idSchema,
  requestId: idSchema,
  sampleIds: z.array(idSchema).min(1).max(256),
  epoch,
});
export type SamplesGeneratePayload = z.output<typeof samplesGeneratePayload>;

/** One webhook delivery; URL, body and secret are read from Postgres so they never sit in Redis. */
export const webhookDeliverPayload = z.strictObject({ v: version, deliveryId: idSchema });
export type WebhookDeliverPayload = z.output<typeof webhookDeliverPayload>;

/** The periodic sweep that re-enqueues deliveries Postgres holds as due but whose queue job was lost. */
export const webhookSweepPayload = z.strictObject({ v: version });
export type WebhookSweepPayload = z.output<typeof webhookSweepPayload>;

const minutes = (n: number): number => n * 60_000;

/** Stage retries: stages are idempotent and training resumes from its last checkpoint, so a retry is cheap. */
const stageRetry = { attempts: 3, backoff: { type: 'exponential', delay: 30_000 } } as const satisfies RetryPolicy;

export const augmentCatalog = {
  queue: 'augment',
  jobs: {
    'personalization.augment': defineJob({
      payload: personalizationPayload,
      retry: stageRetry,
      jobId: (p) => `personalization.augment-${p.personalizationId}`,
    }),
  },
} as const satisfies QueueCatalog;

export const gsaCatalog = {
  queue: 'gsa',
  jobs: {
    'personalization.gsa': defineJob({
      payload: personalizationPayload,
      retry: stageRetry,
      jobId: (p) => `personalization.gsa-${p.personalizationId}`,
    }),
  },
} as const satisfies QueueCatalog;

export const trainCatalog = {
  queue: 'train',
  jobs: {
    'personalization.train': defineJob({
      payload: personalizationPayload,
      retry: { attempts: 3, backoff: { type: 'exponential', delay: minutes(1) } },
      jobId: (p) => `personalization.train-${p.personalizationId}`,
    }),
  },
} as const satisfies QueueCatalog;

export const sampleCatalog = {
  queue: 'sample',
  jobs: {
    /** The initial samples rendered right after training (the last stage of the flow). */
    'personalization.sample': defineJob({
      payload: personalizationPayload,
      retry: stageRetry,
      jobId: (p) => `personalization.sample-${p.personalizationId}`,
    }),
    'samples.generate': defineJob({
      payload: samplesGeneratePayload,
      retry: { attempts: 3, backoff: { type: 'exponential', delay: 15_000 } },
      // one job per request and epoch (the reconciler's takeovers and recoveries: packages/db fence.ts)
      jobId: (p) => `samples.generate-${p.requestId}${p.epoch ? `-r${p.epoch}` : ''}`,
    }),
  },
} as const satisfies QueueCatalog;

export const webhooksCatalog = {
  queue: 'webhooks',
  jobs: {
    /** 8 tries, 10 s doubling: the last retry about 21 minutes after the first failure. */
    'webhook.deliver': defineJob({
      payload: webhookDeliverPayload,
      retry: { attempts: 8, backoff: { type: 'exponential', delay: 10_000 } },
      jobId: (p) => `webhook.deliver-${p.deliveryId}`,
    }),
    /**
     * Runs from a BullMQ job scheduler (`scheduleWebhookSweep` in packages/webhooks), one per period whatever
     * the number of webhook workers; a failed sweep is tried once more, then left to the next period.
     */
    'webhook.sweep': defineJob({
      payload: webhookSweepPayload,
      retry: { attempts: 2, backoff: { type: 'fixed', delay: 5_000 } },
      jobId: () => 'webhook.sweep',
    }),
  },
} as const satisfies QueueCatalog;

/** Every queue by name. */
export const catalogs = {
  augment: augmentCatalog,
  gsa: gsaCatalog,
  train: trainCatalog,
  sample: sampleCatalog,
  webhooks: webhooksCatalog,
} as const;

export type Catalogs = typeof catalogs;
export type QueueName = keyof Catalogs;
export const queueNames = Object.keys(catalogs) as QueueName[];
/** Job names of one queue. */
export type JobName<Q extends QueueName> = keyof Catalogs[Q]['jobs'] & string;
/** The payload schema of one job. */
export type PayloadSchema<Q extends QueueName, N extends JobName<Q>> = Catalogs[Q]['jobs'][N] extends JobDefinition<infer S> ? S : never;
/** What a producer passes (defaults such as `v` may be omitted). */
export type PayloadInput<Q extends QueueName, N extends JobName<Q>> = z.input<PayloadSchema<Q, N>>;
/** What a handler receives after validation. */
export type Payload<Q extends QueueName, N extends JobName<Q>> = z.output<PayloadSchema<Q, N>>;
