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
  readonly deliveries = new Map<string, Omit<DeliveryRecord, 'attempts' | 'status'>>();
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
  async getSamples(ids: readonly string[]) {
    return ids.flatMap((id) => (this.samples.has(id) ? [structuredClone(this.samples.get(id)!)] : []));
  }
  async upsertSample(row: SampleRow) {
    this.samples.set(row.id, { ...this.samples.get(row.id), ...row });
  }
  async updateSample(id: string, patch: Partial<SampleRow>) {
    this.samples.set(id, { ...this.samples.get(id)!, ...patch });
  }
  async createDelivery(d: Omit<DeliveryRecord, 'attempts' | 'status'>) {
    if (this.deliveries.has(d.id)) return false;
    this.deliveries.set(d.id, d);
    return true;
  }
  async enqueueDelivery(id: string) {
    this.enqueued.push(id);
  }
}
