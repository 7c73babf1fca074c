import { randomUUID } from 'node:crypto';
import type { Artifact as ArtifactRow, ArtifactKind, PrismaClient } from '../generated/client.js';
import type { Tx } from './idempotency.js';

/** An artifact with its size as a number (bytes; exact below 2^53). */
export type ArtifactRecord = Omit<ArtifactRow, 'size'> & { size: number };

export interface ArtifactInput {
  personalizationId: string;
  kind: ArtifactKind;
  /** Storage key of the blob; unique per personalization. */
  key: string;
  sha256: string;
  size: number;
  contentType: string;
}

export interface ArtifactsRepository {
  /** Records a blob; recording the same key again (a re-run stage) updates it instead of adding a row. */
  record(input: ArtifactInput): Promise<ArtifactRecord>;
  list(personalizationId: string, options?: { kind?: ArtifactKind }): Promise<ArtifactRecord[]>;
}

const toRecord = (row: ArtifactRow): ArtifactRecord => ({ ...row, size: Number(row.size) });

/** `record` on a client or a transaction's (fence.ts). */
export async function recordArtifactOn(client: Tx | PrismaClient, input: ArtifactInput): Promise<ArtifactRecord> {
  const fields = { kind: input.kind, sha256: input.sha256, size: BigInt(input.size), contentType: input.contentType };
  const row = await client.artifact.upsert({
    where: { personalizationId_key: { personalizationId: input.personalizationId, key: input.key } },
    create: { personalizationId: input.personalizationId, key: input.key, ...fields },
    update: fields,
  });
  return toRecord(row);
}

/**
 * recordArtifactOn, written only while personalization `personalizationId` has epoch `epoch` (its `progressAt` is
 * touched too), in ONE statement: the fence row's UPDATE locks it until the statement ends, so a takeover either
 * comes before (nothing is written: returns undefined) or waits for it. No transaction spans the caller's awaits,
 * which matters in a worker whose event loop onnxruntime blocks for a whole training step.
 */
export async function recordArtifactWhere(
  client: Tx | PrismaClient,
  input: ArtifactInput,
  fence: { personalizationId: string; epoch: number } | { requestId: string; epoch: number },
): Promise<ArtifactRecord | undefined> {
  const size = BigInt(input.size);
  const rows =
    'requestId' in fence
      ? await client.$queryRaw<ArtifactRow[]>`
          WITH f AS (UPDATE "Sample" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "requestId" = ${fence.requestId} AND "epoch" = ${fence.epoch} RETURNING 1)
          INSERT INTO "Artifact" ("id", "personalizationId", "kind", "key", "sha256", "size", "contentType")
          SELECT ${randomUUID()}, ${input.personalizationId}, ${input.kind}::"ArtifactKind", ${input.key}, ${input.sha256}, ${size}, ${input.contentType}
          WHERE EXISTS (SELECT 1 FROM f)
          ON CONFLICT ("personalizationId", "key") DO UPDATE SET "kind" = EXCLUDED."kind", "sha256" = EXCLUDED."sha256", "size" = EXCLUDED."size", "contentType" = EXCLUDED."contentType"
          RETURNING *`
      : await client.$queryRaw<ArtifactRow[]>`
          WITH f AS (UPDATE "Personalization" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "id" = ${fence.personalizationId} AND "epoch" = ${fence.epoch} RETURNING 1)
          INSERT INTO "Artifact" ("id", "personalizationId", "kind", "key", "sha256", "size", "contentType")
          SELECT ${randomUUID()}, ${input.personalizationId}, ${input.kind}::"ArtifactKind", ${input.key}, ${input.sha256}, ${size}, ${input.contentType}
          WHERE EXISTS (SELECT 1 FROM f)
          ON CONFLICT ("personalizationId", "key") DO UPDATE SET "kind" = EXCLUDED."kind", "sha256" = EXCLUDED."sha256", "size" = EXCLUDED."size", "contentType" = EXCLUDED."contentType"
          RETURNING *`;
  return rows[0] && toRecord(rows[0]);
}

export function createArtifactsRepository(prisma: PrismaClient): ArtifactsRepository {
  return {
    record: (input) => recordArtifactOn(prisma, input),
    async list(personalizationId, options = {}) {
      const rows = await prisma.artifact.findMany({
        where: { personalizationId, ...(options.kind ? { kind: options.kind } : {}) },
        orderBy: [{ createdAt: 'asc' }, { key: 'asc' }],
      });
      return rows.map(toRecord);
    },
  };
}
