import type { DeliveryRecord } from '@dynasyn/webhooks';
import type { ArtifactRow, PersonalizationJob, PersonalizationStatus, SampleJobRow, StageDb, StageProgress } from '../ports.js';

type SampleRow = SampleJobRow & { tenantId: string; requestId: string; artifactKey?: string; error?: unknown };

/**
 * StageDb in memory, for stage tests while packages/db's adapter is wired in the apps (the service itself always
 * runs on Postgres). Keeps every status change and progress write so tests can assert the sequence.
 */
export class MemoryStageDb implements StageDb {
  readonly jobs = new Map<string, PersonalizationJob & { error?: { code: string; message: string }; progress: StageProgress[] }>();
  readonly statuses: PersonalizationStatus[] = [];
  readonly progressWrites: (StageProgress & { at: number })[] = [];
  readonly artifacts = new Map<string, ArtifactRow>();
  readonly samples = new Map<string, SampleRow>();
  readonly deliveries = new Map<string, Omit<DeliveryRecord, 'id' | 'attempts' | 'status'> & { eventId: string; personalizationId?: string }>();
  readonly enqueued: string[] = [];

  add(job: PersonalizationJob): void {
    this.jobs.set(job.id, { ...job, progress: [] });
  }
  private job(id: string) {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no personalization ${id}`);
    return j;
  }
  async getPersonalization(id: string) {
    const j = this.jobs.get(id);
    return j && structuredClone(j);
  }
  async setStatus(id: string, status: PersonalizationStatus, error?: { code: string; message: string }) {
    const j = this.job(id);
    j.status = status;
    if (error) j.error = error;
    this.statuses.push(status);
  }
  async setProgress(id: string, p: StageProgress) {
    const j = this.job(id);
    j.progress = [...j.progress.filter((q) => q.stage !== p.stage), p];
    this.progressWrites.push({ ...p, at: Date.now() });
  }
  async isCancelRequested(id: string) {
    return this.job(id).cancelRequested;
  }
  async recordArtifact(a: ArtifactRow) {
    this.artifacts.set(`${a.personalizationId}|${a.key}`, a);
  }
  async getRequestSamples(requestId: string) {
    return [...this.samples.values()].filter((r) => r.requestId === requestId).map((r) => structuredClone(r));
  }
  async saveSamples(s: { tenantId: string; personalizationId: string; requestId: string; items: { prompt: string; seed: number; settings: SampleJobRow['settings']; artifactKey: string }[] }) {
    for (const r of [...this.samples.values()]) if (r.requestId === s.requestId) this.samples.delete(r.id);
    s.items.forEach((it, i) => this.samples.set(`${s.requestId}-${i}`, { ...it, id: `${s.requestId}-${i}`, tenantId: s.tenantId, personalizationId: s.personalizationId, requestId: s.requestId, status: 'succeeded' }));
  }
  /** A later request's queued rows (what the API creates before enqueueing samples.generate). */
  addSamples(rows: SampleRow[]): void {
    for (const r of rows) this.samples.set(r.id, r);
  }
  async updateSample(id: string, patch: Partial<SampleRow>) {
    this.samples.set(id, { ...this.samples.get(id)!, ...patch });
  }
  async createDelivery(d: Omit<DeliveryRecord, 'id' | 'attempts' | 'status'> & { eventId: string; personalizationId?: string }) {
    if (!this.deliveries.has(d.eventId)) this.deliveries.set(d.eventId, d);
    return d.eventId;
  }
  async enqueueDelivery(id: string) {
    this.enqueued.push(id);
  }
}
