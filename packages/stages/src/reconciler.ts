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
 * The quiet period keeps the reconciler off work that is moving: a worker whose job Redis lost keeps running
 * until its lock renewal fails (then it aborts), and the API's create is followed by its enqueue. It is twice the
 * stage lock, so a recovery never races a run that is still alive.
 *
 * One pass at a time across every process, behind a Postgres advisory lock: Postgres is the store that survives
 * what the reconciler repairs (a Redis lock would be lost with the data it guards, and would be unavailable in
 * exactly the outage the pass recovers from), and the lock goes with the holder's connection if it dies.
 */
import type { Db } from '@dynasyn/db';
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
  /** Recoveries before a personalization (or sample request) fails for good. Default 3. */
  maxRecoveries?: number;
}

export interface ReconcileReport {
  /** Personalizations looked up in Redis. */
  checked: number;
  recovered: { id: string; stage: queue.PersonalizationStage; recoveries: number }[];
  /** Failed with RECOVERY_LIMIT. */
  failed: string[];
  /** Cancels completed for lost work. */
  canceled: string[];
  /** Sample requests re-enqueued. */
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

async function pass(p: ReconcilerPorts, o: ReconcileOptions): Promise<ReconcileReport> {
  const max = o.maxRecoveries ?? DEFAULT_MAX_RECOVERIES;
  const quietSince = new Date(Date.now() - o.quietMs);
  const report: ReconcileReport = { checked: 0, recovered: [], failed: [], canceled: [], requests: [], failedRequests: [] };
  // an emptied Redis lost the webhook sweep's scheduler too (registered only when a webhooks worker starts);
  // only a missing one is registered again, since an upsert would move its next run
  if (!(await p.set.queues.webhooks.getJobScheduler('webhook.sweep'))) await scheduleWebhookSweep(p.set.queues);
  for (const row of await p.db.personalizations.listUnfinished({ quietSince })) {
    report.checked += 1;
    const states = await queue.personalizationJobStates(p.set.queues, row.id, row.recoveries);
    if (Object.values(states).includes('active')) continue;
    if (row.cancelRequestedAt) {
      // a worker polls for the cancel only while it runs one of the jobs; none does
      await p.deps.db.setStatus(row.id, 'canceled');
      report.canceled.push(row.id);
      continue;
    }
    if (row.updatedAt >= quietSince) continue;
    let job: PersonalizationJob | undefined;
    try {
      job = await p.deps.db.getPersonalization(row.id);
    } catch (err) {
      // stored options no stage can run: its stage would fail it for good, and so does the reconciler
      job = { id: row.id, tenantId: row.tenantId, webhookUrl: row.webhookUrl } as PersonalizationJob;
      await failPersonalization(p.deps as StageDeps, job, { code: 'BAD_OPTION', message: (err as Error).message });
      report.failed.push(row.id);
      continue;
    }
    if (!job) continue;
    const stage = currentStage(await storedPhases(p.deps as StageDeps, job));
    if (queue.LIVE_JOB_STATES.includes(states[stage])) continue;
    if (row.recoveries >= max) {
      await failPersonalization(p.deps as StageDeps, job, {
        code: 'RECOVERY_LIMIT',
        message: `its ${stage} stage was lost ${row.recoveries + 1} times (Redis lost or failed its job); recovered at most ${max} times`,
      });
      p.deps.logger?.error({ id: row.id, stage, recoveries: row.recoveries }, 'lost work past its recovery limit: failed');
      report.failed.push(row.id);
      continue;
    }
    const input = { personalizationId: row.id, tenantId: row.tenantId };
    if (!(await queue.restorePersonalizationFlow(p.set.queues, p.set.flowProducer, input, stage, row.recoveries + 1))) continue;
    const recoveries = (await p.db.personalizations.recordRecovery(row.id)) ?? row.recoveries + 1;
    p.deps.logger?.warn({ id: row.id, stage, recoveries, states }, 'lost work re-enqueued from its current stage');
    report.recovered.push({ id: row.id, stage, recoveries });
  }
  for (const req of await p.db.samples.listUnfinishedRequests({ createdBefore: quietSince })) {
    // the initial samples' rows belong to the sample stage (a run killed between creating and finishing them):
    // the personalization's own recovery redoes them; a samples.generate would render them a second time and
    // send their samples.completed (shared dedupe key) before the personalization succeeded
    if (req.requestId === initialRequestId(req.personalizationId)) continue;
    // the API's job, then one id per recovery (as the personalization chains: see personalizationJobId)
    const jobId = `samples.generate-${req.requestId}${req.recoveries > 0 ? `-r${req.recoveries}` : ''}`;
    const state = await p.set.queues.sample.getJobState(jobId);
    if (queue.LIVE_JOB_STATES.includes(state)) continue;
    if (req.recoveries >= max) {
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
      report.failedRequests.push(req.requestId);
      continue;
    }
    if ((await p.set.queues.sample.getJob(jobId)) && (await p.set.queues.sample.remove(jobId)) === 0) continue;
    const payload = { personalizationId: req.personalizationId, tenantId: req.tenantId, requestId: req.requestId, sampleIds: req.sampleIds };
    const data = queue.parsePayload('sample', 'samples.generate', payload);
    await p.set.queues.sample.add('samples.generate', data, {
      ...queue.jobOptions('sample', 'samples.generate', data),
      jobId: `samples.generate-${req.requestId}-r${req.recoveries + 1}`,
    });
    await p.db.samples.recordRecovery(req.requestId);
    p.deps.logger?.warn({ requestId: req.requestId, state }, 'lost sample request re-enqueued');
    report.requests.push(req.requestId);
  }
  return report;
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
        if (r && (r.recovered.length || r.failed.length || r.canceled.length || r.requests.length || r.failedRequests.length))
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
