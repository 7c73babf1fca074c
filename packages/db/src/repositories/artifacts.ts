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
