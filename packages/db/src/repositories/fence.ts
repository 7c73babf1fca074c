/**
 * Fenced writes: the one way a stage attempt writes, so that a worker the reconciler took the work from (hung while
 * its job lock kept being renewed, or cut off from Redis) can never write after the takeover.
 *
 * The fencing token is the `epoch` of the personalization row (of the request's Sample rows for `samples.generate`):
 * a stage attempt runs for one epoch (its job's payload carries it) and the reconciler's takeover moves the epoch on
 * in one conditional UPDATE (`supersede`, `supersedeRequest`). Each fenced write is one transaction that first
 * touches the fence row (`progressAt = now()` WHERE its epoch is still the attempt's) and then writes: the UPDATE
 * locks the fence row until the commit, so a takeover either commits before it (the write sees the new epoch and is
 * refused with EPOCH_SUPERSEDED, nothing written) or waits for the write's commit (the write came first). The touch
 * is also the attempt's sign of progress, which the reconciler reads to tell a hung attempt from a slow one.
 */
import type { PersonalizationStatus, PrismaClient, Sample } from '../generated/client.js';
import { DbError } from '../errors.js';
import { recordArtifactOn, type ArtifactInput, type ArtifactRecord } from './artifacts.js';
import type { Tx } from './idempotency.js';
import { setProgressOn, updateStatusOn, type StatusUpdate } from './personalizations.js';
import { replaceRequestOn, updateSampleOn, type SampleRequest, type SampleUpdate } from './samples.js';
import { createDeliveryOn, type DeliveryInput } from './webhooks.js';

/** The attempt a fenced write belongs to: a personalization's stage job, or a sample request's job. */
export type Fence = { personalizationId: string; epoch: number } | { requestId: string; epoch: number };

/** The writes a stage attempt makes, each refused with `DbError('EPOCH_SUPERSEDED')` once its epoch has moved on. */
export interface FencedWrites {
  readonly fence: Fence;
  /** Refuses unless the epoch holds; otherwise records a sign of progress (`progressAt`). */
  check(): Promise<void>;
  /** `personalizations.updateStatus` of the fenced personalization (a request fence refuses: it owns no status). */
  updateStatus(to: PersonalizationStatus, update?: StatusUpdate): Promise<{ changed: boolean }>;
  /** `personalizations.setProgress` of the fenced personalization. */
  setProgress(stage: string, step: number, total: number): Promise<void>;
  recordArtifact(input: ArtifactInput): Promise<ArtifactRecord>;
  /** `samples.update` of a row of the fenced request (or personalization): another's row is not found. */
  updateSample(id: string, update: SampleUpdate): Promise<Sample>;
  /** `samples.replaceRequest`; the new rows get the personalization's epoch only under a request fence (the request's own). */
  replaceRequest(request: SampleRequest): Promise<Sample[]>;
  createDelivery(input: DeliveryInput): Promise<{ id: string }>;
}

const describe = (f: Fence) => ('requestId' in f ? `sample request ${f.requestId}` : `personalization ${f.personalizationId}`);

/** Touches the fence row inside `tx`; throws EPOCH_SUPERSEDED when the epoch moved on (or the row is gone). */
async function claim(tx: Tx, f: Fence): Promise<void> {
  const n =
    'requestId' in f
      ? await tx.$executeRaw`UPDATE "Sample" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "requestId" = ${f.requestId} AND "epoch" = ${f.epoch}`
      : await tx.$executeRaw`UPDATE "Personalization" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "id" = ${f.personalizationId} AND "epoch" = ${f.epoch}`;
  if (n === 0) throw new DbError('EPOCH_SUPERSEDED', `${describe(f)}: epoch ${f.epoch} was taken over (or the row is gone): the write is refused`);
}

export function fencedWrites(prisma: PrismaClient, fence: Fence): FencedWrites {
  const run = <T>(write: (tx: Tx) => Promise<T>): Promise<T> =>
    prisma.$transaction(async (tx) => {
      await claim(tx, fence);
      return write(tx);
    });
  const personalizationId = () => {
    if ('requestId' in fence) throw new TypeError(`${describe(fence)}: a request's job writes no personalization status or progress`);
    return fence.personalizationId;
  };
  return {
    fence,
    check: () => run(async () => undefined),
    updateStatus: (to, update) => run(async (tx) => ({ changed: (await updateStatusOn(tx, personalizationId(), to, update)).changed })),
    setProgress: (stage, step, total) => run((tx) => setProgressOn(tx, personalizationId(), stage, step, total)),
    recordArtifact: (input) => run((tx) => recordArtifactOn(tx, input)),
    updateSample: (id, update) =>
      run((tx) => updateSampleOn(tx, id, update, 'requestId' in fence ? { requestId: fence.requestId } : { personalizationId: fence.personalizationId })),
    replaceRequest: (request) => run((tx) => replaceRequestOn(tx, request, 'requestId' in fence ? fence.epoch : 0)),
    createDelivery: (input) => run(async (tx) => ({ id: (await createDeliveryOn(tx, input)).id })),
  };
}
