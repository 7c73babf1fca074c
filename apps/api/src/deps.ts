/**
 * The side effects the API needs, as small ports. `src/index.ts` adapts packages/db, packages/storage and
 * packages/queue to them; tests hand in the same real implementations against fresh databases/prefixes.
 */
import {
  TERMINAL_STATUSES,
  type ArtifactKind,
  type PersonalizationStatus,
  type SampleStatus,
  type StageProgress,
  type WebhookDeliveryStatus,
} from '@dynasyn/domain';
import type { QueueHealth } from '@dynasyn/queue';
import type { BlobStore } from '@dynasyn/storage';
import type { Queue } from 'bullmq';

export type { PersonalizationStatus, StageProgress } from '@dynasyn/domain';
export type { WorkSnapshot } from '@dynasyn/db';

/** The statuses a personalization never leaves (cancel answers 409 there). */
export const FINAL_STATUSES: readonly PersonalizationStatus[] = TERMINAL_STATUSES;

export interface Tenant {
  id: string;
  name: string;
  webhookSecret: string;
}

export interface Subject {
  /** Class word ("dog", "ball"). */
  classWord: string;
  /** What the subject is, in a few words ("brown checked dog with a hat"), when the client gave it. */
  nounPhrase?: string;
  /** Storage key of the subject's mask. */
  maskKey: string;
}

export interface Personalization {
  id: string;
  tenantId: string;
  status: PersonalizationStatus;
  progress: StageProgress[];
  subjects: Subject[];
  imageKey: string;
  options: Record<string, unknown>;
  webhookUrl: string | null;
  metrics: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  cancelRequestedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewPersonalization {
  id: string;
  tenantId: string;
  subjects: Subject[];
  imageKey: string;
  options: Record<string, unknown>;
  webhookUrl: string | null;
}

export interface Artifact {
  id: string;
  kind: ArtifactKind;
  key: string;
  size: number;
  sha256: string;
  contentType: string;
  createdAt: Date;
}

export interface Sample {
  id: string;
  personalizationId: string;
  prompt: string;
  seed: number;
  steps: number | null;
  guidance: number | null;
  status: SampleStatus;
  /** Storage key of the image once generated. */
  key: string | null;
  metrics: Record<string, unknown> | null;
  createdAt: Date;
}

export interface NewSample {
  id: string;
  /** Groups the samples of one request (the samples.generate job). */
  requestId: string;
  tenantId: string;
  personalizationId: string;
  prompt: string;
  seed: number;
  steps: number | null;
  guidance: number | null;
}

export interface WebhookDelivery {
  id: string;
  eventType: string;
  url: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

export interface StoredResponse {
  statusCode: number;
  body: unknown;
}

export interface IdempotencyRecord {
  requestHash: string;
  response: StoredResponse;
}

/**
 * How a create answers, and the `Idempotency-Key` to store that answer under: packages/db commits the rows and
 * the key together (one protocol: packages/db/src/repositories/idempotency.ts).
 */
export interface CreateRequest<T> {
  answer(created: T): StoredResponse | Promise<StoredResponse>;
  idempotency?: { key: string; requestHash: string };
}

/** The rows created and their answer, or (nothing created) the answer the same request stored under its key first. */
export type CreateOutcome<T> = { created: T; response: StoredResponse } | { replayed: IdempotencyRecord };

/** Postgres, seen through the repositories of packages/db. Every read is scoped by tenant. */
export interface ApiDb {
  tenants: {
    /** The tenant of an unrevoked API key (looked up by its sha256), or null. */
    findByApiKey(apiKey: string): Promise<Tenant | null>;
    /** Replaces the webhook signing secret; returns the new one. */
    rotateWebhookSecret(tenantId: string): Promise<string>;
  };
  personalizations: {
    /** Throws IDEMPOTENCY_KEY_REUSED when another request holds the key. */
    create(p: NewPersonalization, request: CreateRequest<Personalization>): Promise<CreateOutcome<Personalization>>;
    get(tenantId: string, id: string): Promise<Personalization | null>;
    /** Sets cancelRequestedAt; and status 'canceled' when the job has not started. Returns the new state. */
    requestCancel(tenantId: string, id: string): Promise<Personalization | null>;
    /** Removes the row and everything hanging off it (artifacts, samples, deliveries). */
    delete(tenantId: string, id: string): Promise<boolean>;
    /** Undoes a create whose job could not be enqueued: the row and its key's answer together (a retry may reuse the key). */
    discard(tenantId: string, id: string, idempotencyKey?: string): Promise<void>;
  };
  artifacts: { list(personalizationId: string): Promise<Artifact[]> };
  samples: {
    /** The samples of one request (same requestId), in order. Throws IDEMPOTENCY_KEY_REUSED like a personalization's create. */
    createMany(samples: NewSample[], request: CreateRequest<Sample[]>): Promise<CreateOutcome<Sample[]>>;
    list(tenantId: string, q: { personalizationId: string; prompt?: string }): Promise<Sample[]>;
    /** Undoes a request whose job could not be enqueued: its rows and its key's answer together. */
    discard(tenantId: string, requestId: string, idempotencyKey?: string): Promise<void>;
  };
  webhooks: { listDeliveries(tenantId: string, limit: number): Promise<WebhookDelivery[]> };
  /** The answer stored under a key, read before any work is done (a retry's uploads may be gone). */
  idempotency: { find(tenantId: string, key: string): Promise<IdempotencyRecord | null> };
  /** Read-only aggregates for /ops and /metrics: what Postgres knows of the work. */
  ops: { workSnapshot(o: { leaseSeconds: number }): Promise<import('@dynasyn/db').WorkSnapshot> };
  /** Throws when Postgres does not answer. */
  ping(): Promise<void>;
}

/** BullMQ through packages/queue. */
export interface ApiQueues {
  /** Enqueues the flow augment -> gsa -> train -> sample; a second call for the same id adds nothing. */
  enqueuePersonalization(p: { personalizationId: string; tenantId: string }): Promise<void>;
  enqueueSamples(p: { personalizationId: string; tenantId: string; requestId: string; sampleIds: string[] }): Promise<void>;
  health(): Promise<QueueHealth[]>;
  /** The BullMQ queues shown (read-only) on /ops/queues. */
  queues(): Queue[];
}

export interface ApiDeps {
  db: ApiDb;
  storage: BlobStore;
  queues: ApiQueues;
  /** ioredis client for rate limits; none: rate limits kept in memory (one process). */
  redis?: import('ioredis').Redis;
  /** Named readiness probes for /readyz (db, redis, storage); each throws when its service is unreachable. */
  readiness: Record<string, () => Promise<void>>;
}
