/**
 * What operators need to see stuck work, read from the system of record (Redis can lose jobs; Postgres knows
 * what was accepted): rows by status, work in a running stage with no write for longer than its lease,
 * recoveries, webhook deliveries by status. Read-only, a few aggregate queries; ages come from Postgres' clock.
 */
import type { PrismaClient } from '../generated/client.js';
import { PersonalizationStatus, SampleStatus, WebhookDeliveryStatus } from '../generated/enums.js';

/** The statuses in which a stage job is running (a worker holds it and writes progress). */
export const RUNNING_STAGE_STATUSES = ['augmenting', 'training', 'sampling'] as const;
export type RunningStageStatus = (typeof RUNNING_STAGE_STATUSES)[number];

export interface WorkSnapshot {
  /** Personalizations by status (every status present, 0 when none). */
  personalizations: Record<PersonalizationStatus, number>;
  /** Sample rows by status. */
  samples: Record<SampleStatus, number>;
  /**
   * Personalizations in a running stage whose row (status, progress, cancel) has not moved for longer than
   * the stage's lease: their worker is gone or stuck, or Redis lost their job. `oldestSeconds`: since the
   * quietest one's last write; null when none.
   */
  stale: Record<RunningStageStatus, { count: number; oldestSeconds: number | null }>;
  /** Personalizations waiting in `queued`, and for how long the oldest has (null when none). */
  oldestQueuedSeconds: number | null;
  /**
   * Sum of the recoveries counters (the reconciler re-enqueued work Redis lost); null when this database has
   * no such column yet (older schema).
   */
  recoveries: { personalizations: number; samples: number } | null;
  /** Webhook deliveries by status (`failed`: given up after every retry). */
  webhookDeliveries: Record<WebhookDeliveryStatus, number>;
}

export interface OpsRepository {
  /** One consistent-enough look at the work (separate statements, no transaction: a dashboard, not a ledger). */
  workSnapshot(o: { leaseSeconds: number }): Promise<WorkSnapshot>;
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
const counts = <K extends string>(keys: readonly K[], rows: { status: string; n: bigint | number }[]) => {
  const out = zeros(keys);
  for (const r of rows) if ((keys as readonly string[]).includes(r.status)) out[r.status as K] = Number(r.n);
  return out;
};
const seconds = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function createOpsRepository(prisma: PrismaClient): OpsRepository {
  let hasRecoveries: Promise<{ personalization: boolean; sample: boolean }> | undefined;
  const recoveryColumns = () =>
    (hasRecoveries ??= prisma.$queryRaw<{ table_name: string }[]>`
      SELECT table_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND column_name = 'recoveries' AND table_name IN ('Personalization', 'Sample')`.then(
      (rows) => ({ personalization: rows.some((r) => r.table_name === 'Personalization'), sample: rows.some((r) => r.table_name === 'Sample') }),
      (err: unknown) => {
        hasRecoveries = undefined; // ask again next time
        throw err;
      },
    ));

  return {
    async workSnapshot({ leaseSeconds }) {
      const [byStatus, samples, deliveries, stale, queued, columns] = await Promise.all([
        prisma.$queryRaw<{ status: string; n: bigint }[]>`SELECT status::text AS status, count(*) AS n FROM "Personalization" GROUP BY status`,
        prisma.$queryRaw<{ status: string; n: bigint }[]>`SELECT status::text AS status, count(*) AS n FROM "Sample" GROUP BY status`,
        prisma.$queryRaw<{ status: string; n: bigint }[]>`SELECT status::text AS status, count(*) AS n FROM "WebhookDelivery" GROUP BY status`,
        prisma.$queryRaw<{ status: string; n: bigint; oldest: number | null }[]>`
          SELECT status::text AS status, count(*) AS n, extract(epoch FROM now() - min("updatedAt"))::float8 AS oldest
          FROM "Personalization"
          WHERE status::text IN ('augmenting', 'training', 'sampling') AND "updatedAt" < now() - make_interval(secs => ${leaseSeconds}::float8)
          GROUP BY status`,
        prisma.$queryRaw<{ oldest: number | null }[]>`
          SELECT extract(epoch FROM now() - min("createdAt"))::float8 AS oldest FROM "Personalization" WHERE status = 'queued'`,
        recoveryColumns(),
      ]);
      let recoveries: WorkSnapshot['recoveries'] = null;
      if (columns.personalization) {
        const [p] = await prisma.$queryRaw<{ n: bigint | null }[]>`SELECT sum("recoveries") AS n FROM "Personalization"`;
        const s = columns.sample ? (await prisma.$queryRaw<{ n: bigint | null }[]>`SELECT sum("recoveries") AS n FROM "Sample"`)[0] : undefined;
        recoveries = { personalizations: Number(p?.n ?? 0), samples: Number(s?.n ?? 0) };
      }
      const staleBy = Object.fromEntries(
        RUNNING_STAGE_STATUSES.map((status) => {
          const row = stale.find((r) => r.status === status);
          return [status, { count: Number(row?.n ?? 0), oldestSeconds: seconds(row?.oldest) }];
        }),
      ) as WorkSnapshot['stale'];
      return {
        personalizations: counts(Object.values(PersonalizationStatus), byStatus),
        samples: counts(Object.values(SampleStatus), samples),
        stale: staleBy,
        oldestQueuedSeconds: seconds(queued[0]?.oldest),
        recoveries,
        webhookDeliveries: counts(Object.values(WebhookDeliveryStatus), deliveries),
      };
    },
  };
}
