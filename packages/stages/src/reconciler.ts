/**
 * The reconciler: Postgres is the system of record and Redis only carries work (DESIGN.md), so work Redis lost
 * (emptied, restarted without its data, a job failed by BullMQ without its handler: "stalled more than allowable
 * limit") is rebuilt here from what Postgres and storage hold.
 *
 * One pass: each unfinished personalization that has been quiet (no status move, progress or cancel) for
 * `quietMs`, or that has a cancel asked, is looked up in Redis. Its current stage is the first one whose output
 * storage does not hold (the stage manifests); it is live when a job of its chain is running, or its current
 * stage's job is waiting to run. Otherwise it is lost, and:
 * - a cancel asked: the personalization is `canceled` (no worker is left to do it);
 * - past `maxRecoveries`: it fails with `RECOVERY_LIMIT` and `personalization.failed`;
 * - else: one recovery is counted and its chain is put back from the current stage (the stages are idempotent and
 *   training resumes from the checkpoint in storage).
 * Sample requests (`samples.generate`) with rows still queued or running are treated the same way; past the limit
 * their unfinished rows fail with `RECOVERY_LIMIT` and the request ends with its `samples.completed`.
 *
 * A job that is live (a worker holds its lock) but whose attempt made no progress within the lease (`leaseMs`:
 * STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset; no fenced write since it was taken; a worker stuck in a
 * native call or a deadlock keeps renewing its lock) is hung, and is taken over the same way, fenced: each attempt
 * runs for one epoch of its row (packages/db fence.ts), every write of a stage is made only while that epoch
 * holds, and a recovery or takeover first moves the epoch on in one conditional UPDATE, then enqueues under the new
 * epoch's job ids. The old job keeps its lock until its worker lets go, but whatever it tries to write is refused
 * (STAGE_SUPERSEDED).
 *
 * The quiet period keeps the reconciler off work that is moving: a worker whose job Redis lost keeps running
 * until its lock renewal fails (then it aborts), and the API's create is followed by its enqueue. It is twice the
 * stage lock, so a recovery never races a run that is still alive.
 *
 * One pass at a time across every process, behind a Postgres advisory lock: Postgres is the store that survives
 * what the reconciler repairs (a Redis lock would be lost with the data it guards, and would be unavailable in
 * exactly the outage the pass recovers from), and the lock goes with the holder's connection if it dies.
 */
import type { Db, Personalization, UnfinishedRequest } from '@dynasyn/db';
import * as queue from '@dynasyn/queue';
import { notify, scheduleWebhookSweep } from '@dynasyn/webhooks';
import { initialRequestId } from './handlers/sample.js';
import { failPersonalization } from './lifecycle.js';
import type { PersonalizationJob, StageDeps } from './ports.js';
import { storedPhases } from './run-dir.js';

/** The advisory lock id of the reconciler's pass ("DYNR" in ASCII). */
export const RECONCILER_LOCK_ID = 0x44594e52;

export interface ReconcilerPorts {
  /** The repositories (listing unfinished work, counting recoveries) and the advisory lock. */
  db: Pick<Db, 'personalizations' | 'samples' | 'exclusively'>;
  /** Queues and flow producer of the deployment's prefix. */
  set: queue.QueueSet;
  /** Storage (what each stage stored), the stages' db view (statuses, webhooks), the logger. */
  deps: Pick<StageDeps, 'db' | 'storage' | 'logger'>;
}

export interface ReconcileOptions {
  /** Work untouched this long and not live in Redis is lost. */
  quietMs: number;
  /**
   * The stage lease (STAGE_LEASE_SECONDS, or STAGE_LOCK_SECONDS when unset): a job that is live in Redis (a worker
   * holds its lock) but whose attempt wrote nothing for this long, counted from its last write or from when the
   * worker took the job, whichever is later, is hung and is taken over. Absent: live jobs are never taken over.
   */
  leaseMs?: number;
  /** Recoveries before a personalization (or sample request) fails for good. Default 3. */
  maxRecoveries?: number;
}

export interface ReconcileReport {
  /** Personalizations looked up in Redis. */
  checked: number;
  /** Lost (no live job) and put back. */
  recovered: { id: string; stage: queue.PersonalizationStage; recoveries: number }[];
  /** Live but hung past the lease, and taken over: put back under a new epoch while the old job still holds its lock. */
  takenOver: { id: string; stage: queue.PersonalizationStage; recoveries: number; epoch: number }[];
  /** Failed with RECOVERY_LIMIT. */
  failed: string[];
  /** Cancels completed for lost (or hung) work. */
  canceled: string[];
  /** Sample requests re-enqueued (lost or taken over). */
  requests: string[];
  /** Sample requests whose unfinished rows failed with RECOVERY_LIMIT. */
  failedRequests: string[];
}

const DEFAULT_MAX_RECOVERIES = 3;

/** The stage whose output storage does not hold yet (the sample stage also when everything is stored: it finishes the job). */
export function currentStage(phases: readonly string[]): queue.PersonalizationStage {
  if (!phases.includes('compose') && !phases.includes('augment')) return 'augment';
  if (!phases.includes('augment')) return 'gsa';
  if (!phases.includes('phase2')) return 'train';
  return 'sample';
}

/** One pass; null when another process is running one. */
export async function reconcileOnce(p: ReconcilerPorts, o: ReconcileOptions): Promise<ReconcileReport | null> {
  const r = await p.db.exclusively(RECONCILER_LOCK_ID, () => pass(p, o));
  return r.ran ? r.value : null;
}

const stageIndex = (s: queue.PersonalizationStage) => queue.personalizationStages.findIndex((x) => x.queue === s);

/** Whether a job a worker holds made no progress within the lease: its attempt's last write, or its start when later. */
function hung(job: { processedOn?: number | undefined } | undefined, progressAt: Date | null, leaseMs: number): boolean {
  return Date.now() - Math.max(progressAt?.getTime() ?? 0, job?.processedOn ?? 0) > leaseMs;
}

async function pass(p: ReconcilerPorts, o: ReconcileOptions): Promise<ReconcileReport> {
  const max = o.maxRecoveries ?? DEFAULT_MAX_RECOVERIES;
  const quietSince = new Date(Date.now() - o.quietMs);
  const stalledSince = o.leaseMs !== undefined ? new Date(Date.now() - o.leaseMs) : undefined;
  const report: ReconcileReport = { checked: 0, recovered: [], takenOver: [], failed: [], canceled: [], requests: [], failedRequests: [] };
  // an emptied Redis lost the webhook sweep's scheduler too (registered only when a webhooks worker starts);
  // only a missing one is registered again, since an upsert would move its next run
  if (!(await p.set.queues.webhooks.getJobScheduler('webhook.sweep'))) await scheduleWebhookSweep(p.set.queues);
  for (const row of await p.db.personalizations.listUnfinished({ quietSince, ...(stalledSince ? { stalledSince } : {}) })) {
    report.checked += 1;
    // the chain of the row's epoch: the API's (0), or the one the last recovery or takeover enqueued
    const states = await queue.personalizationJobStates(p.set.queues, row.id, row.epoch);
    const active = queue.personalizationStages.find((s) => states[s.queue] === 'active')?.queue;
    if (active) {
      if (o.leaseMs === undefined) continue;
      const held = await p.set.queues[active].getJob(queue.personalizationJobId(active, row.id, row.epoch));
      if (!hung(held, row.progressAt, o.leaseMs)) continue;
      await takeOver(p, max, report, row, active, held?.processedBy ?? null);
      continue;
    }
    if (row.cancelRequestedAt) {
      // a worker polls for the cancel only while it runs one of the jobs; none does
      await p.deps.db.setStatus(row.id, 'canceled');
      report.canceled.push(row.id);
      continue;
    }
    if (row.updatedAt >= quietSince) continue;
    const job = await readJob(p, report, row);
    if (!job) continue;
    const stage = currentStage(await storedPhases(p.deps as StageDeps, job));
    if (queue.LIVE_JOB_STATES.includes(states[stage])) continue;
    if (row.recoveries >= max) {
      // fenced first: a worker still running it unseen (cut off from Redis) can write nothing after the failure
      if (!(await p.db.personalizations.supersede(row.id, row.epoch, { recovery: false }))) continue;
      await failPersonalization(p.deps as StageDeps, job, {
        code: 'RECOVERY_LIMIT',
        message: `its ${stage} stage was lost ${row.recoveries + 1} times (Redis lost or failed its job); recovered at most ${max} times`,
      });
      p.deps.logger?.error({ id: row.id, stage, recoveries: row.recoveries }, 'lost work past its recovery limit: failed');
      report.failed.push(row.id);
      continue;
    }
    // the new epoch first (one conditional UPDATE: a concurrent pass or a finished row leaves it), then its chain
    const next = await p.db.personalizations.supersede(row.id, row.epoch, { recovery: true });
    if (!next) continue;
    const input = { personalizationId: row.id, tenantId: row.tenantId };
    await queue.restorePersonalizationFlow(p.set.queues, p.set.flowProducer, input, stage, next.epoch, row.epoch);
    p.deps.logger?.warn({ id: row.id, stage, recoveries: next.recoveries, epoch: next.epoch, states }, 'lost work re-enqueued from its current stage');
    report.recovered.push({ id: row.id, stage, recoveries: next.recoveries });
  }
  for (const req of await p.db.samples.listUnfinishedRequests({ createdBefore: quietSince })) {
    // the initial samples' rows belong to the sample stage (a run killed between creating and finishing them):
    // the personalization's own recovery redoes them; a samples.generate would render them a second time and
    // send their samples.completed (shared dedupe key) before the personalization succeeded
    if (req.requestId === initialRequestId(req.personalizationId)) continue;
    const payload = (epoch: number) =>
      queue.parsePayload('sample', 'samples.generate', {
        personalizationId: req.personalizationId,
        tenantId: req.tenantId,
        requestId: req.requestId,
        sampleIds: req.sampleIds,
        ...(epoch > 0 ? { epoch } : {}),
      });
    // the API's job (epoch 0), then one id per epoch
    const jobId = queue.jobOptions('sample', 'samples.generate', payload(req.epoch)).jobId!;
    const state = await p.set.queues.sample.getJobState(jobId);
    let takeover = false;
    if (state === 'active') {
      if (o.leaseMs === undefined || !hung(await p.set.queues.sample.getJob(jobId), req.progressAt, o.leaseMs)) continue;
      takeover = true;
    } else if (queue.LIVE_JOB_STATES.includes(state)) continue;
    if (req.recoveries >= max) {
      if (!(await p.db.samples.supersedeRequest(req.requestId, req.epoch, { recovery: false }))) continue;
      await failRequest(p, req, max);
      report.failedRequests.push(req.requestId);
      continue;
    }
    // a finished or failed job of the old epoch is removed; a locked one (a takeover) is left to fail on its fence
    if (!takeover && (await p.set.queues.sample.getJob(jobId)) && (await p.set.queues.sample.remove(jobId)) === 0) continue;
    const next = await p.db.samples.supersedeRequest(req.requestId, req.epoch, { recovery: true });
    if (!next) continue;
    const data = payload(next.epoch);
    await p.set.queues.sample.add('samples.generate', data, queue.jobOptions('sample', 'samples.generate', data));
    p.deps.logger?.warn(
      { requestId: req.requestId, state, epoch: next.epoch, recoveries: next.recoveries },
      takeover ? 'sample request made no progress within its lease while its job stayed live: taken over under a new epoch' : 'lost sample request re-enqueued',
    );
    report.requests.push(req.requestId);
  }
  return report;
}

/** The personalization a stage would run, or undefined (gone; or options no stage can run: then failed here). */
async function readJob(p: ReconcilerPorts, report: ReconcileReport, row: Personalization): Promise<PersonalizationJob | undefined> {
  try {
    return await p.deps.db.getPersonalization(row.id);
  } catch (err) {
    // stored options no stage can run: its stage would fail it for good, and so does the reconciler
    const job = { id: row.id, tenantId: row.tenantId, webhookUrl: row.webhookUrl } as PersonalizationJob;
    await failPersonalization(p.deps as StageDeps, job, { code: 'BAD_OPTION', message: (err as Error).message });
    report.failed.push(row.id);
    return undefined;
  }
}

/**
 * A stage job a worker still holds (its lock renewed) whose attempt made no progress within the lease: the epoch
 * moves on first, in one conditional UPDATE, so the hung attempt's writes are refused from then on whatever it
 * does; then, as for lost work, a cancel completes, past the limit it fails, or the chain is put back from the
 * earlier of the hung stage and the first stage storage lacks (the hung stage's own completion, such as its event,
 * is redone by its no-op run), under the new epoch's ids. The old job keeps its lock until its worker lets go; its
 * run then fails with STAGE_SUPERSEDED and its chain with it.
 */
async function takeOver(
  p: ReconcilerPorts,
  max: number,
  report: ReconcileReport,
  row: Personalization,
  hungStage: queue.PersonalizationStage,
  worker: string | null,
): Promise<void> {
  const log = { id: row.id, hungStage, epoch: row.epoch, worker, jobId: queue.personalizationJobId(hungStage, row.id, row.epoch) };
  const last = row.recoveries >= max || row.cancelRequestedAt !== null;
  const next = await p.db.personalizations.supersede(row.id, row.epoch, { recovery: !last });
  if (!next) return;
  if (row.cancelRequestedAt) {
    await p.deps.db.setStatus(row.id, 'canceled');
    p.deps.logger?.warn(log, 'canceled work whose stage hung past its lease: taken over and canceled');
    report.canceled.push(row.id);
    return;
  }
  const job = await readJob(p, report, row);
  if (!job) return;
  if (row.recoveries >= max) {
    await failPersonalization(p.deps as StageDeps, job, {
      code: 'RECOVERY_LIMIT',
      message: `its ${hungStage} stage made no progress within its lease after ${row.recoveries} recoveries; recovered at most ${max} times`,
    });
    p.deps.logger?.error({ ...log, recoveries: row.recoveries }, 'hung work past its recovery limit: failed');
    report.failed.push(row.id);
    return;
  }
  const stored = currentStage(await storedPhases(p.deps as StageDeps, job));
  const from = stageIndex(hungStage) < stageIndex(stored) ? hungStage : stored;
  const input = { personalizationId: row.id, tenantId: row.tenantId };
  await queue.restorePersonalizationFlow(p.set.queues, p.set.flowProducer, input, from, next.epoch, row.epoch);
  p.deps.logger?.warn(
    { ...log, stage: from, recoveries: next.recoveries, newEpoch: next.epoch },
    'stage made no progress within its lease while its job stayed live: taken over under a new epoch (the old attempt is fenced off)',
  );
  report.takenOver.push({ id: row.id, stage: from, recoveries: next.recoveries, epoch: next.epoch });
}

/** A sample request past its recovery limit: its unfinished rows fail with RECOVERY_LIMIT and the request ends. */
async function failRequest(p: ReconcilerPorts, req: UnfinishedRequest, max: number): Promise<void> {
  const error = { code: 'RECOVERY_LIMIT', message: `the request was lost ${req.recoveries + 1} times; recovered at most ${max} times` };
  for (const s of await p.deps.db.getRequestSamples(req.requestId))
    if (s.status === 'queued' || s.status === 'running') await p.deps.db.updateSample(s.id, { status: 'failed', error });
  // the request's end, as its job would have sent it with failed rows: without it the client waits for good
  const job = await p.deps.db.getPersonalization(req.personalizationId).catch(() => undefined);
  if (job)
    await notify(p.deps.db, {
      tenantId: job.tenantId,
      personalizationId: job.id,
      url: job.webhookUrl,
      type: 'samples.completed',
      dedupeKey: `samples.completed:${req.requestId}`,
      data: { id: job.id, status: job.status, requestId: req.requestId, samples: req.sampleIds },
    });
  p.deps.logger?.error({ requestId: req.requestId, recoveries: req.recoveries }, 'lost sample request past its recovery limit: failed');
}

export interface Reconciler {
  /** Runs a pass now (after the one in flight); null when another process held the lock. */
  runNow(): Promise<ReconcileReport | null>;
  /** Stops the schedule and waits for a pass in flight. */
  stop(): Promise<void>;
}

/** A pass at once and then every `intervalMs` (each process; the lock keeps passes apart). Errors are logged. */
export function startReconciler(p: ReconcilerPorts, o: ReconcileOptions & { intervalMs: number }): Reconciler {
  let chain: Promise<ReconcileReport | null> = Promise.resolve(null);
  let stopped = false;
  const run = () => {
    chain = chain.then(
      () => (stopped ? null : reconcileOnce(p, o)),
      () => null,
    );
    chain = chain.then(
      (r) => {
        if (r && (r.recovered.length || r.takenOver.length || r.failed.length || r.canceled.length || r.requests.length || r.failedRequests.length))
          p.deps.logger?.info(r, 'reconciler pass');
        return r;
      },
      (err: Error) => {
        p.deps.logger?.warn({ err: err.message }, 'reconciler pass failed; tried again at the next interval');
        return null;
      },
    );
    return chain;
  };
  void run();
  const timer = setInterval(() => void run(), o.intervalMs);
  timer.unref();
  return {
    runNow: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await chain.catch(() => undefined);
    },
  };
}
