/**
 * StageDb over packages/db's repositories (Postgres): the only place that knows how the stages' view maps onto
 * rows. Status moves go through `updateStatus`, which refuses backward moves and leaves terminal states alone.
 */
import type { Db, Personalization, Sample } from '@dynasyn/db';
import { personalizationOptionsSchema, type PersonalizationOptions } from '@dynasyn/domain';
import { resolveOptions, type OptionOverrides } from '@dynasyn/dynasyn';
import { notifyPortsFrom } from '@dynasyn/webhooks';
import { PermanentStageError } from './errors.js';
import type { PersonalizationJob, SampleJobRow, StageDb } from './ports.js';

/**
 * The stored `options` JSON: the client's options (@dynasyn/domain's schema: `{preset, steps, prompts}`; steps:
 * training steps of EACH phase; prompts: the initial sample prompts), and beside them, for operators and tests,
 * any dynasyn option overrides, which resolveOptions checks (type and range of every option).
 */
const storedOptionsSchema = personalizationOptionsSchema.loose();

export function jobOptions(stored: unknown, id: string) {
  const parsed = storedOptionsSchema.safeParse(stored ?? {});
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new PermanentStageError('BAD_OPTION', `personalization ${id}: stored options: ${why}`, { cause: parsed.error });
  }
  const { preset = 'fast', steps, prompts, ...overrides } = parsed.data as PersonalizationOptions & OptionOverrides;
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
  const subjects = (row.subjects as { classWord: string; maskKey: string }[]).map((s) => ({ classWord: s.classWord, maskKey: s.maskKey }));
  return {
    id: row.id,
    tenantId: row.tenantId,
    status: row.status,
    imageKey: row.imageKey,
    subjects,
    options: jobOptions(row.options, row.id),
    webhookUrl: row.webhookUrl,
    cancelRequested: row.cancelRequestedAt !== null,
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

/** `enqueueDelivery` puts the `webhook.deliver` job on the webhooks queue (packages/queue `enqueue`). */
export function stageDbFrom(db: Db, enqueueDelivery: (deliveryId: string) => Promise<void>): StageDb {
  return {
    async getPersonalization(id) {
      const row = await db.personalizations.findById(id);
      return row ? toJob(row) : undefined;
    },
    async setStatus(id, status, error, metrics) {
      await db.personalizations.updateStatus(id, status, { ...(error ? { error } : {}), ...(metrics !== undefined ? { metrics: metrics as object } : {}) });
    },
    setProgress: (id, p) => db.personalizations.setProgress(id, p.stage, p.step, p.total),
    async isCancelRequested(id) {
      const row = await db.personalizations.findById(id);
      return !row || row.cancelRequestedAt !== null;
    },
    async recordArtifact(a) {
      await db.artifacts.record(a);
    },
    getRequestSamples: async (requestId) => (await db.samples.listByRequest(requestId)).map(toSample),
    async saveSamples({ tenantId, personalizationId, requestId, items }) {
      let rows = await db.samples.listByRequest(requestId);
      if (rows.length !== items.length) {
        // a different count can only come from a changed run: start the request's rows over
        rows = await db.samples.replaceRequest({
          tenantId,
          personalizationId,
          requestId,
          items: items.map((it) => ({ prompt: it.prompt, seed: it.seed, settings: it.settings })),
        });
      }
      for (const [i, it] of items.entries()) await db.samples.update(rows[i]!.id, { status: 'succeeded', artifactKey: it.artifactKey });
    },
    async updateSample(id, patch) {
      await db.samples.update(id, {
        status: patch.status,
        ...(patch.artifactKey !== undefined ? { artifactKey: patch.artifactKey } : {}),
        ...(patch.metrics !== undefined ? { metrics: patch.metrics as object } : {}),
        ...(patch.error ? { error: patch.error } : {}),
      });
    },
    ...notifyPortsFrom(db, enqueueDelivery),
  };
}
