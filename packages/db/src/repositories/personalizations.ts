import { Prisma, type Personalization, type PersonalizationStatus, type PrismaClient } from '../generated/client.js';
import type { StageProgress } from '@dynasyn/domain';
import { isTerminal, statusesLeadingTo, TERMINAL_STATUSES } from '../status.js';
import { createIdempotently, releaseKey, type IdempotencyInput, type IdempotencyRecord, type Tx } from './idempotency.js';

/** One subject of a personalization, in the order of the request's masks. */
export interface SubjectRecord {
  classWord: string;
  nounPhrase?: string;
  /** Storage key of the subject's mask. */
  maskKey: string;
}

/** Progress of one stage (the domain's shape); `progress` holds one per stage reached, in the order reached. */
export type { StageProgress };

/** What a failed personalization reports. */
export interface JobError {
  code: string;
  message: string;
}

export interface CreatePersonalizationInput {
  /** Chosen by the caller when storage keys must contain it before the row exists; default a random uuid. */
  id?: string;
  tenantId: string;
  bundleId?: string | null;
  subjects: SubjectRecord[];
  imageKey: string;
  options: Prisma.InputJsonValue;
  webhookUrl?: string | null;
}

export type CreatePersonalizationResult =
  { created: true; personalization: Personalization; idempotency: IdempotencyRecord | null } | { created: false; idempotency: IdempotencyRecord };

export interface StatusUpdate {
  error?: JobError;
  metrics?: Prisma.InputJsonValue;
}

export interface PersonalizationsRepository {
  /**
   * Creates the row; with `idempotency`, the row and the key's answer in one transaction (idempotency.ts), or
   * nothing and the stored answer when the key was used by the same request first.
   */
  create(input: CreatePersonalizationInput, idempotency?: IdempotencyInput<Personalization>): Promise<CreatePersonalizationResult>;
  /** The tenant's personalization, or null (also for another tenant's id). */
  get(tenantId: string, id: string): Promise<Personalization | null>;
  /** Unscoped read for workers, which hold ids from trusted job payloads; never for request handlers. */
  findById(id: string): Promise<Personalization | null>;
  list(tenantId: string, options?: { limit?: number; before?: Date }): Promise<Personalization[]>;
  /**
   * Moves to `to` if legal from the current state (see status.ts), atomically; `changed` is false when it
   * was not (same state, a backward move, or already terminal), and `personalization` is the row as it is.
   */
  updateStatus(id: string, to: PersonalizationStatus, update?: StatusUpdate): Promise<{ changed: boolean; personalization: Personalization | null }>;
  /**
   * Records a stage's progress, replacing that stage's previous entry, except that its step never goes down: a
   * stage resumed from an older checkpoint (or re-run) reports steps it had passed, and a client must not see
   * progress move backwards.
   */
  setProgress(id: string, stage: string, step: number, total: number): Promise<void>;
  /**
   * Unfinished personalizations (not terminal) for the reconciler, oldest first: those not updated since
   * `quietSince` (no status move, progress or cancel since), those with a cancel asked whatever their age, and with
   * `stalledSince` those whose stage attempt wrote nothing since (`progressAt`; `updatedAt` before its first write).
   */
  listUnfinished(options: { quietSince: Date; stalledSince?: Date; limit?: number }): Promise<Personalization[]>;
  /**
   * Takes the work over from the stage attempt of `epoch` (the fencing token, fence.ts), in one conditional
   * UPDATE: the epoch moves on (that attempt's writes are refused from now on), `progressAt` and `updatedAt` start
   * again, and with `recovery` one recovery is counted. Null, changing nothing, when the row is gone, finished,
   * or no longer at `epoch` (another pass took it over first).
   */
  supersede(id: string, epoch: number, o: { recovery: boolean }): Promise<{ epoch: number; recoveries: number } | null>;
  /** Asks running stages to stop (they poll `cancelRequestedAt`); a job still queued is canceled at once. Null for another tenant's id. */
  requestCancel(tenantId: string, id: string): Promise<Personalization | null>;
  /** Deletes the row and, by cascade, its artifacts, samples and deliveries; false when not the tenant's. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /**
   * Undoes a create whose job could not be started: the row and the answer stored under `idempotencyKey`, in one
   * transaction, so a retry with that key creates it afresh (never a replayed answer naming a deleted row).
   */
  discard(tenantId: string, id: string, idempotencyKey?: string): Promise<void>;
}

/** A client or a transaction's: the writes below run on either (fence.ts runs them inside its transaction). */
type Client = PrismaClient | Tx;

/** `updateStatus` on `client`. */
export async function updateStatusOn(client: Client, id: string, to: PersonalizationStatus, update: StatusUpdate = {}) {
  const now = new Date();
  const { count } = await client.personalization.updateMany({
    where: { id, status: { in: statusesLeadingTo(to) } },
    data: {
      status: to,
      ...(isTerminal(to) ? { finishedAt: now } : {}),
      ...(update.error ? { error: update.error as unknown as Prisma.InputJsonValue } : {}),
      ...(update.metrics !== undefined ? { metrics: update.metrics } : {}),
    },
  });
  if (count > 0 && to !== 'queued') {
    await client.personalization.updateMany({ where: { id, startedAt: null }, data: { startedAt: now } });
  }
  return { changed: count > 0, personalization: await client.personalization.findUnique({ where: { id } }) };
}

/** `setProgress` on `client`. */
export async function setProgressOn(client: Client, id: string, stage: string, step: number, total: number): Promise<void> {
  await setProgressWhere(client, id, stage, step, total);
}

/**
 * setProgressOn, written only while the row's epoch is `epoch` (and then also `progressAt`, the attempt's sign of
 * progress), in one statement: no transaction spans the caller's awaits. Returns the rows written (0: superseded).
 */
export function setProgressWhere(client: Client, id: string, stage: string, step: number, total: number, epoch?: number): Promise<number> {
  const entry = JSON.stringify({ stage, step, total });
  // One statement, so concurrent progress writers never lose each other's stages; the stored step is kept
  // when it is higher (a resume from a checkpoint behind it).
  return client.$executeRaw`
    UPDATE "Personalization" SET "updatedAt" = now(),
      "progressAt" = CASE WHEN ${epoch ?? null}::int IS NULL THEN "progressAt" ELSE now() AT TIME ZONE 'UTC' END,
      "progress" = CASE
      WHEN EXISTS (SELECT 1 FROM jsonb_array_elements("progress") AS e WHERE e->>'stage' = ${stage})
      THEN (SELECT jsonb_agg(CASE WHEN e->>'stage' = ${stage}
              THEN jsonb_set(${entry}::jsonb, '{step}', to_jsonb(GREATEST((e->>'step')::numeric, ${step}::numeric)))
              ELSE e END ORDER BY i)
            FROM jsonb_array_elements("progress") WITH ORDINALITY AS t(e, i))
      ELSE "progress" || jsonb_build_array(${entry}::jsonb)
    END
    WHERE "id" = ${id} AND (${epoch ?? null}::int IS NULL OR "epoch" = ${epoch ?? null}::int)`;
}

export function createPersonalizationsRepository(prisma: PrismaClient): PersonalizationsRepository {
  const findById = (id: string) => prisma.personalization.findUnique({ where: { id } });

  async function create(input: CreatePersonalizationInput, idem?: IdempotencyInput<Personalization>): Promise<CreatePersonalizationResult> {
    const data = {
      ...(input.id ? { id: input.id } : {}),
      tenantId: input.tenantId,
      bundleId: input.bundleId ?? null,
      subjects: input.subjects as unknown as Prisma.InputJsonValue,
      imageKey: input.imageKey,
      options: input.options,
      webhookUrl: input.webhookUrl ?? null,
    };
    if (!idem) return { created: true, personalization: await prisma.personalization.create({ data }), idempotency: null };
    const r = await createIdempotently(
      prisma,
      input.tenantId,
      idem,
      (tx) => tx.personalization.create({ data }),
      (p) => p.id,
    );
    return r.created ? { created: true, personalization: r.value, idempotency: r.idempotency } : r;
  }

  const updateStatus = (id: string, to: PersonalizationStatus, update: StatusUpdate = {}) => updateStatusOn(prisma, id, to, update);

  return {
    create,
    get: (tenantId, id) => prisma.personalization.findFirst({ where: { id, tenantId } }),
    findById,
    list: (tenantId, options = {}) =>
      prisma.personalization.findMany({
        where: { tenantId, ...(options.before ? { createdAt: { lt: options.before } } : {}) },
        orderBy: { createdAt: 'desc' },
        take: options.limit ?? 50,
      }),
    updateStatus,
    setProgress: (id, stage, step, total) => setProgressOn(prisma, id, stage, step, total),
    listUnfinished: ({ quietSince, stalledSince, limit = 500 }) =>
      prisma.personalization.findMany({
        where: {
          status: { notIn: [...TERMINAL_STATUSES] },
          OR: [
            { updatedAt: { lt: quietSince } },
            { cancelRequestedAt: { not: null } },
            ...(stalledSince ? [{ progressAt: { lt: stalledSince } }, { progressAt: null, updatedAt: { lt: stalledSince } }] : []),
          ],
        },
        orderBy: { updatedAt: 'asc' },
        take: limit,
      }),
    async supersede(id, epoch, o) {
      const rows = await prisma.$queryRaw<{ epoch: number; recoveries: number }[]>`
        UPDATE "Personalization" SET "epoch" = "epoch" + 1, "recoveries" = "recoveries" + ${o.recovery ? 1 : 0},
          "progressAt" = now() AT TIME ZONE 'UTC', "updatedAt" = now() AT TIME ZONE 'UTC'
        WHERE "id" = ${id} AND "epoch" = ${epoch} AND "status"::text NOT IN (${Prisma.join([...TERMINAL_STATUSES])})
        RETURNING "epoch", "recoveries"`;
      return rows[0] ?? null;
    },
    async requestCancel(tenantId, id) {
      const now = new Date();
      await prisma.personalization.updateMany({
        where: { id, tenantId, cancelRequestedAt: null, status: { notIn: [...TERMINAL_STATUSES] } },
        data: { cancelRequestedAt: now },
      });
      await prisma.personalization.updateMany({ where: { id, tenantId, status: 'queued' }, data: { status: 'canceled', finishedAt: now } });
      return prisma.personalization.findFirst({ where: { id, tenantId } });
    },
    async delete(tenantId, id) {
      const { count } = await prisma.personalization.deleteMany({ where: { id, tenantId } });
      return count > 0;
    },
    async discard(tenantId, id, idempotencyKey) {
      await prisma.$transaction(async (tx) => {
        await releaseKey(tx, tenantId, idempotencyKey);
        await tx.personalization.deleteMany({ where: { id, tenantId } });
      });
    },
  };
}
