/**
 * One stage run, the same for every worker: skip finished, canceled or deleted personalizations, set the
 * status, throttle progress into Postgres, watch for cancellation, and turn failures into a `failed` status
 * with `{code, message}` and a `personalization.failed` webhook (once no retry is left).
 *
 * Deletion while a stage runs: the API asks for a cancel, removes the personalization's blobs and its row at
 * once; the stage sees the row gone within a cancel poll and stops, but an upload it had in flight may land
 * after the API's delete. So a stage that ends (however) with its row gone removes the personalization's
 * storage folder again, after its last write, and ends as `canceled` without an error.
 */
import { isTerminal } from '@dynasyn/domain';
import type { DynasynOptions } from '@dynasyn/dynasyn';
import { notify } from '@dynasyn/webhooks';
import { classify, PermanentStageError, StageCanceled, StageSuperseded } from './errors.js';
import type { FencedStageDb, PersonalizationJob, PersonalizationStatus, StageBlobs, StageDeps, StageFence, StageProgress } from './ports.js';
import { personalizationRoot } from './run-dir.js';

/**
 * When the personalization's row is gone (deleted through the API), removes what this worker may have written
 * under its storage folder after the API's delete, and returns true.
 */
export async function purgeIfDeleted(deps: StageDeps, job: Pick<PersonalizationJob, 'tenantId' | 'id'>): Promise<boolean> {
  if (
    await deps.db.getPersonalization(job.id).then(
      (row) => row !== undefined,
      () => true,
    )
  )
    return false;
  const removed = await deps.storage.deletePrefix(personalizationRoot(job));
  deps.logger?.info({ id: job.id, removed }, 'personalization deleted while its stage ran: its storage folder is removed again');
  return true;
}

/** Progress writes at most every `intervalMs` (the last step of a stage always lands). */
export function progressWriter(deps: StageDeps, id: string): { report: (p: StageProgress) => void; flush: () => Promise<void> } {
  const interval = deps.progressIntervalMs ?? 1000;
  let last = 0;
  let pending: StageProgress | undefined;
  let chain = Promise.resolve();
  const write = (p: StageProgress) => {
    last = Date.now();
    chain = chain.then(() => deps.db.setProgress(id, p)).catch((err: Error) => deps.logger?.warn({ id, err: err.message }, 'progress write failed'));
  };
  return {
    report: (p) => {
      if (p.step >= p.total || Date.now() - last >= interval) {
        pending = undefined;
        write(p);
      } else pending = p;
    },
    flush: async () => {
      if (pending) write(pending);
      pending = undefined;
      await chain;
    },
  };
}

/**
 * An AbortSignal that fires when the user cancels (polled), when the reconciler took this attempt over (its
 * `epoch` moved on: polled with the cancel), or when `outer` aborts (worker shutdown).
 */
export function cancelWatcher(
  deps: StageDeps,
  id: string,
  outer?: AbortSignal,
  epoch?: number,
): { signal: AbortSignal; canceled: () => boolean; superseded: () => boolean; stop: () => void } {
  const ctl = new AbortController();
  let canceled = false;
  let superseded = false;
  const timer = setInterval(() => {
    deps.db.getRunState(id).then(
      (state) => {
        if (ctl.signal.aborted) return;
        if (state && epoch !== undefined && state.epoch !== epoch) {
          superseded = true;
          ctl.abort(new StageSuperseded(`personalization ${id}`, epoch));
        } else if (!state || state.cancelRequested) {
          canceled = true;
          ctl.abort(new StageCanceled(id));
        }
      },
      () => {
        /* a missed poll is retried at the next tick */
      },
    );
  }, deps.cancelPollMs ?? 1000);
  const onOuter = () => ctl.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  if (outer?.aborted) onOuter();
  return {
    signal: ctl.signal,
    canceled: () => canceled,
    superseded: () => superseded,
    stop: () => {
      clearInterval(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

/** The job's stored options run with this worker's device and threads (a GPU node sets 'cuda'). */
export function stageOptions(deps: Pick<StageDeps, 'executionProviders' | 'intraOpNumThreads'>, job: Pick<PersonalizationJob, 'options'>): DynasynOptions {
  return {
    ...job.options,
    ...(deps.executionProviders ? { executionProviders: deps.executionProviders } : {}),
    ...(deps.intraOpNumThreads !== undefined ? { intraOpNumThreads: deps.intraOpNumThreads } : {}),
  };
}

/**
 * The ports of one stage attempt: every db write fenced by the attempt's epoch (StageDb.fenced), and the fence
 * checked before each blob write (put, folder upload, prefix delete). A blob store has no conditional write, so a
 * blob write already past its check when the takeover commits may still land; the artifact row that records it,
 * what clients see, is fenced in the same transaction.
 */
export function attemptDeps(deps: StageDeps, fence: StageFence): StageDeps & { db: FencedStageDb } {
  const db = deps.db.fenced(fence);
  const s = deps.storage;
  const storage: StageBlobs = {
    get: (key) => s.get(key),
    head: (key) => s.head(key),
    list: (prefix) => s.list(prefix),
    downloadPrefix: (prefix, dir) => s.downloadPrefix(prefix, dir),
    put: async (key, body, opts) => (await db.check(), s.put(key, body, opts)),
    uploadDir: async (dir, prefix) => (await db.check(), s.uploadDir(dir, prefix)),
    deletePrefix: async (prefix) => (await db.check(), s.deletePrefix(prefix)),
  };
  return { ...deps, db, storage };
}

export interface StageRunContext {
  job: PersonalizationJob;
  options: DynasynOptions;
  signal: AbortSignal;
  progress: (p: StageProgress) => void;
  /** The attempt's ports (attemptDeps): a stage writes through these only. */
  deps: StageDeps;
}

export interface StageSpec {
  /** Status while the stage runs. */
  status: PersonalizationStatus;
  /** True when this stage's outputs already exist (the stage is then a no-op); `deps`: the attempt's. */
  done?: (job: PersonalizationJob, deps: StageDeps) => Promise<boolean>;
  run: (ctx: StageRunContext) => Promise<void>;
}

export interface StageCall {
  personalizationId: string;
  /**
   * The attempt's epoch, from its job's payload (absent there: 0). A job whose epoch is not the row's was taken
   * over and stops at once (StageSuperseded). Default: the row's epoch (an in-process run, no job).
   */
  epoch?: number;
  /** Worker shutdown / job abort. */
  signal?: AbortSignal;
  /** No retry follows a failure of this attempt: mark the personalization failed. Default true. */
  finalAttempt?: boolean;
}

/** Marks a personalization failed for good and raises `personalization.failed`. */
export async function failPersonalization(deps: StageDeps, job: PersonalizationJob, error: { code: string; message: string }): Promise<void> {
  await deps.db.setStatus(job.id, 'failed', error);
  await notify(deps.db, {
    tenantId: job.tenantId,
    url: job.webhookUrl,
    type: 'personalization.failed',
    personalizationId: job.id,
    data: { id: job.id, status: 'failed', error },
  });
}

/**
 * Runs one stage; returns 'done' | 'skipped' | 'canceled'. Throws PermanentStageError for failures no retry
 * fixes (the app turns it into BullMQ's UnrecoverableError) and rethrows others for BullMQ to retry. An attempt
 * the reconciler took over throws StageSuperseded (permanent) and writes nothing: not its failure, not a cancel.
 */
export async function runStage(deps: StageDeps, call: StageCall, spec: StageSpec): Promise<'done' | 'skipped' | 'canceled'> {
  const job = await deps.db.getPersonalization(call.personalizationId);
  if (!job) {
    deps.logger?.info({ id: call.personalizationId }, 'personalization deleted: nothing to do');
    return 'skipped';
  }
  const epoch = call.epoch ?? job.epoch;
  if (job.epoch !== epoch) {
    deps.logger?.warn({ id: job.id, epoch, current: job.epoch }, 'stage job of an attempt the reconciler took over: not run');
    throw new StageSuperseded(`personalization ${job.id}`, epoch);
  }
  const attempt = attemptDeps(deps, { personalizationId: job.id, epoch });
  if (isTerminal(job.status)) return 'skipped';
  if (job.cancelRequested) {
    await attempt.db.setStatus(job.id, 'canceled');
    return 'canceled';
  }
  if (spec.done && (await spec.done(job, attempt))) return 'skipped';
  const options = stageOptions(deps, job);
  await attempt.db.setStatus(job.id, spec.status);
  const progress = progressWriter(attempt, job.id);
  const watch = cancelWatcher(deps, job.id, call.signal, epoch);
  try {
    await spec.run({ job, options, signal: watch.signal, progress: progress.report, deps: attempt });
    watch.stop();
    return (await purgeIfDeleted(deps, job)) ? 'canceled' : 'done';
  } catch (err) {
    watch.stop();
    // a deleted row refuses every fenced write as if taken over: the delete wins, and the run's folder goes
    if (await purgeIfDeleted(deps, job)) return 'canceled';
    // taken over (the poll saw it, or a write was refused): stop here, touching nothing; the new attempt owns the row
    const now = watch.superseded() || err instanceof StageSuperseded ? undefined : await deps.db.getRunState(job.id).catch(() => undefined);
    if (watch.superseded() || err instanceof StageSuperseded || (now && now.epoch !== epoch)) {
      deps.logger?.warn({ id: job.id, epoch, err: (err as Error).message }, 'stage attempt taken over by the reconciler: stopped without writing');
      throw err instanceof StageSuperseded ? err : new StageSuperseded(`personalization ${job.id}`, epoch, { cause: err });
    }
    if (watch.canceled() || (await deps.db.isCancelRequested(job.id).catch(() => false))) {
      // a deleted row: the folder goes (its own storage, unfenced: there is no attempt left to fence it against)
      if (await purgeIfDeleted(deps, job)) return 'canceled';
      await attempt.db.setStatus(job.id, 'canceled');
      return 'canceled';
    }
    if (call.signal?.aborted) throw err; // worker shutdown: the job goes back to waiting, nothing failed
    const c = classify(err);
    deps.logger?.error({ id: job.id, code: c.code, err: c.message }, 'stage failed');
    if (c.permanent || call.finalAttempt !== false) await failPersonalization(attempt, job, { code: c.code, message: c.message });
    if (c.permanent && !(err instanceof PermanentStageError)) throw new PermanentStageError(c.code, c.message, { cause: err });
    throw err;
  } finally {
    watch.stop();
    await progress.flush();
  }
}
