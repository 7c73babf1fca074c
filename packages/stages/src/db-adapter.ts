/**
 * StageDb over packages/db's repositories (Postgres): the only place that knows how the stages' view maps onto
 * rows. Status moves go through `updateStatus`, which refuses backward moves and leaves terminal states alone.
 */
import { DbError, type Db, type Personalization, type Sample } from '@dynasyn/db';
import { personalizationOptionsSchema, type PersonalizationOptions } from '@dynasyn/domain';
import { resolveOptions, type OptionOverrides } from '@dynasyn/dynasyn';
import { notifyPortsFrom } from '@dynasyn/webhooks';
import { PermanentStageError, StageSuperseded } from './errors.js';
import type { FencedStageDb, PersonalizationJob, SampleJobRow, StageDb, StageFence } from './ports.js';

/**
 * The stored `options` JSON: the client's options (@dynasyn/domain's schema: `{preset, steps, prompts,
 * placeholderVectors}`; steps: training steps of EACH phase; prompts: the initial sample prompts), and beside them, for operators and tests,
 * any dynasyn option overrides, which resolveOptions checks (type and range of every option).
 */
const storedOptionsSchema = personalizationOptionsSchema.loose();

export function jobOptions(stored: unknown, id: string) {
  const parsed = storedOptionsSchema.safeParse(stored ?? {});
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new PermanentStageError('BAD_OPTION', `personalization ${id}: stored options: ${why}`, { cause: parsed.error });
  }
  const { preset = 'fast', steps, prompts, placeholderVectors, ...overrides } = parsed.data as PersonalizationOptions & OptionOverrides;
  if (placeholderVectors !== undefined) overrides.train = { ...overrides.train, placeholderVectors };
  if (steps !== undefined)
    overrides.train = { ...overrides.train, phase1: { ...overrides.train?.phase1, steps }, phase2: { ...overrides.train?.phase2, steps } };
  if (prompts !== undefined) overrides.sampling = { ...overrides.sampling, prompts };
  try {
    return resolveOptions(preset, overrides);
  } catch (e) {
    throw new PermanentStageError('BAD_OPTION', `personalization ${id}: ${(e as Error).message}`, { cause: e });
  }
}

function toJob(row: Personalization): PersonalizationJob {
  const subjects = (row.subjects as { classWord: string; nounPhrase?: string; maskKey: string }[]).map((s) => ({
    classWord: s.classWord,
    ...(typeof s.nounPhrase === 'string' ? { nounPhrase: s.nounPhrase } : {}),
    maskKey: s.maskKey,
  }));
  return {
    id: row.id,
    tenantId: row.tenantId,
    status: row.status,
    imageKey: row.imageKey,
    subjects,
    options: jobOptions(row.options, row.id),
    webhookUrl: row.webhookUrl,
    cancelRequested: row.cancelRequestedAt !== null,
    epoch: row.epoch,
  };
}

const toSample = (s: Sample): SampleJobRow => ({
  id: s.id,
  personalizationId: s.personalizationId,
  prompt: s.prompt,
  seed: s.seed,
  status: s.status,
  settings: (s.settings ?? {}) as SampleJobRow['settings'],
});

/** The writes of a StageDb, over either packages/db's repositories or one attempt's fenced writes. */
interface Writes {
  updateStatus(id: string, to: PersonalizationJob['status'], update: { error?: { code: string; message: string }; metrics?: object }): Promise<unknown>;
  setProgress(id: string, stage: string, step: number, total: number): Promise<void>;
  recordArtifact: Db['artifacts']['record'];
  replaceRequest: Db['samples']['replaceRequest'];
  updateSample: Db['samples']['update'];
  createDelivery(input: Parameters<Db['webhooks']['createDelivery']>[0]): Promise<{ id: string }>;
}

function stageDbOver(db: Db, w: Writes, enqueueDelivery: (deliveryId: string) => Promise<void>): Omit<StageDb, 'fenced'> {
  return {
    async getPersonalization(id) {
      const row = await db.personalizations.findById(id);
      return row ? toJob(row) : undefined;
    },
    async setStatus(id, status, error, metrics) {
      await w.updateStatus(id, status, { ...(error ? { error } : {}), ...(metrics !== undefined ? { metrics: metrics as object } : {}) });
    },
    setProgress: (id, p) => w.setProgress(id, p.stage, p.step, p.total),
    async isCancelRequested(id) {
      const row = await db.personalizations.findById(id);
      return !row || row.cancelRequestedAt !== null;
    },
    async getRunState(id) {
      const row = await db.personalizations.findById(id);
      return row ? { cancelRequested: row.cancelRequestedAt !== null, epoch: row.epoch } : undefined;
    },
    async getRequestEpoch(requestId) {
      const rows = await db.samples.listByRequest(requestId);
      return rows.length ? Math.max(...rows.map((r) => r.epoch)) : undefined;
    },
    async recordArtifact(a) {
      await w.recordArtifact(a);
    },
    getRequestSamples: async (requestId) => (await db.samples.listByRequest(requestId)).map(toSample),
    async saveSamples({ tenantId, personalizationId, requestId, items }) {
      let rows = await db.samples.listByRequest(requestId);
      if (rows.length !== items.length) {
        // a different count can only come from a changed run: start the request's rows over
        rows = await w.replaceRequest({
          tenantId,
          personalizationId,
          requestId,
          items: items.map((it) => ({ prompt: it.prompt, seed: it.seed, settings: it.settings })),
        });
      }
      for (const [i, it] of items.entries())
        await w.updateSample(rows[i]!.id, {
          status: 'succeeded',
          artifactKey: it.artifactKey,
          ...(it.metrics !== undefined ? { metrics: it.metrics as object } : {}),
        });
    },
    async updateSample(id, patch) {
      await w.updateSample(id, {
        status: patch.status,
        ...(patch.artifactKey !== undefined ? { artifactKey: patch.artifactKey } : {}),
        ...(patch.metrics !== undefined ? { metrics: patch.metrics as object } : {}),
        ...(patch.error ? { error: patch.error } : {}),
      });
    },
    ...notifyPortsFrom({ webhooks: { createDelivery: w.createDelivery } as Db['webhooks'] }, enqueueDelivery),
  };
}

const isSuperseded = (e: unknown): e is DbError => e instanceof DbError && e.code === 'EPOCH_SUPERSEDED';

/** Each write of `w` with packages/db's refusal turned into the stages' StageSuperseded. */
function refusingAs<T extends object>(w: T, fence: StageFence): T {
  const what = 'requestId' in fence ? `sample request ${fence.requestId}` : `personalization ${fence.personalizationId}`;
  return Object.fromEntries(
    Object.entries(w).map(([k, f]) => [
      k,
      typeof f !== 'function'
        ? f
        : async (...args: unknown[]) => {
            try {
              return await (f as (...a: unknown[]) => Promise<unknown>)(...args);
            } catch (e) {
              throw isSuperseded(e) ? new StageSuperseded(what, fence.epoch, { cause: e }) : e;
            }
          },
    ]),
  ) as T;
}

/** `enqueueDelivery` puts the `webhook.deliver` job on the webhooks queue (packages/queue `enqueue`). */
export function stageDbFrom(db: Db, enqueueDelivery: (deliveryId: string) => Promise<void>): StageDb {
  const plain: Writes = {
    updateStatus: (id, to, update) => db.personalizations.updateStatus(id, to, update),
    setProgress: (id, stage, step, total) => db.personalizations.setProgress(id, stage, step, total),
    recordArtifact: (a) => db.artifacts.record(a),
    replaceRequest: (r) => db.samples.replaceRequest(r),
    updateSample: (id, u) => db.samples.update(id, u),
    createDelivery: (d) => db.webhooks.createDelivery(d),
  };
  const fenced = (fence: StageFence): FencedStageDb => {
    const f = refusingAs(db.fenced(fence), fence);
    // the fence names the personalization (or request) the attempt may write: any other id is a programming error
    const own = (id: string) => {
      if ('personalizationId' in fence && id !== fence.personalizationId)
        throw new TypeError(`a write to personalization ${id} under the fence of ${fence.personalizationId}`);
    };
    const fencedWrites: Writes = {
      updateStatus: (id, to, update) => (own(id), f.updateStatus(to, update)),
      setProgress: (id, stage, step, total) => (own(id), f.setProgress(stage, step, total)),
      recordArtifact: (a) => f.recordArtifact(a),
      replaceRequest: (r) => f.replaceRequest(r),
      updateSample: (id, u) => f.updateSample(id, u),
      createDelivery: (d) => f.createDelivery(d),
    };
    return { ...stageDbOver(db, fencedWrites, enqueueDelivery), fenced, fence, check: () => f.check() };
  };
  return { ...stageDbOver(db, plain, enqueueDelivery), fenced };
}
