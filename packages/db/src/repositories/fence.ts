/**
 * Fenced writes: the one way a stage attempt writes, so that a worker the reconciler took the work from (hung while
 * its job lock kept being renewed, or cut off from Redis) can never write after the takeover.
 *
 * The fencing token is the `epoch` of the personalization row (of the request's Sample rows for `samples.generate`):
 * a stage attempt runs for one epoch (its job's payload carries it) and the reconciler's takeover moves the epoch on
 * in one conditional UPDATE (`supersede`, `supersedeRequest`). Each fenced write first touches the fence row
 * (`progressAt = now()` WHERE its epoch is still the attempt's) and then writes, in one transaction, or in one
 * statement for the writes made while a worker computes (check, setProgress, recordArtifact: see
 * FENCED_TRANSACTION_LIMITS): the UPDATE locks the fence row until the commit, so a takeover either commits before
 * it (the write sees the new epoch and is refused with EPOCH_SUPERSEDED, nothing written) or waits for the write's
 * commit (the write came first). The touch is also the attempt's sign of progress, which the reconciler reads to
 * tell a hung attempt from a slow one.
 */
import type { PersonalizationStatus, PrismaClient, Sample } from '../generated/client.js';
import { DbError } from '../errors.js';
import { recordArtifactWhere, type ArtifactInput, type ArtifactRecord } from './artifacts.js';
import type { Tx } from './idempotency.js';
import { setProgressWhere, updateStatusOn, type StatusUpdate } from './personalizations.js';
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

/** Touches the fence row (in `tx`, or alone as one statement); throws EPOCH_SUPERSEDED when the epoch moved on (or the row is gone). */
async function claim(tx: Tx | PrismaClient, f: Fence): Promise<void> {
  const n =
    'requestId' in f
      ? await tx.$executeRaw`UPDATE "Sample" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "requestId" = ${f.requestId} AND "epoch" = ${f.epoch}`
      : await tx.$executeRaw`UPDATE "Personalization" SET "progressAt" = now() AT TIME ZONE 'UTC' WHERE "id" = ${f.personalizationId} AND "epoch" = ${f.epoch}`;
  if (n === 0) throw superseded(f);
}

const superseded = (f: Fence) => new DbError('EPOCH_SUPERSEDED', `${describe(f)}: epoch ${f.epoch} was taken over (or the row is gone): the write is refused`);

/**
 * Limits of a fenced write's transaction. A worker's event loop stops for a whole onnxruntime call (a training
 * step or a sample: seconds to minutes on a CPU), and a write it started just before (a progress event, the
 * background checkpoint upload) cannot commit until that call ends: Prisma's defaults (2 s to start, 5 s to
 * commit) would fail it. The writes made while compute runs (check, setProgress, recordArtifact) are single
 * statements and take no transaction at all; these limits are for the rest, made between calls.
 */
export const FENCED_TRANSACTION_LIMITS = { maxWait: 10 * 60_000, timeout: 10 * 60_000 } as const;

export function fencedWrites(prisma: PrismaClient, fence: Fence): FencedWrites {
  const run = <T>(write: (tx: Tx) => Promise<T>): Promise<T> =>
    prisma.$transaction(async (tx) => {
      await claim(tx, fence);
      return write(tx);
    }, FENCED_TRANSACTION_LIMITS);
  const personalizationId = () => {
    if ('requestId' in fence) throw new TypeError(`${describe(fence)}: a request's job writes no personalization status or progress`);
    return fence.personalizationId;
  };
  return {
    fence,
    check: () => claim(prisma, fence),
    updateStatus: (to, update) => run(async (tx) => ({ changed: (await updateStatusOn(tx, personalizationId(), to, update)).changed })),
    setProgress: async (stage, step, total) => {
      if ((await setProgressWhere(prisma, personalizationId(), stage, step, total, fence.epoch)) === 0) throw superseded(fence);
    },
    recordArtifact: async (input) => {
      const row = await recordArtifactWhere(prisma, input, fence);
      if (!row) throw superseded(fence);
      return row;
    },
    updateSample: (id, update) =>
      run((tx) => updateSampleOn(tx, id, update, 'requestId' in fence ? { requestId: fence.requestId } : { personalizationId: fence.personalizationId })),
    replaceRequest: (request) => run((tx) => replaceRequestOn(tx, request, 'requestId' in fence ? fence.epoch : 0)),
    createDelivery: (input) => run(async (tx) => ({ id: (await createDeliveryOn(tx, input)).id })),
  };
}
