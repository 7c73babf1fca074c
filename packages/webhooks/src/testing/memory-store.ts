import type { AttemptRecord, DeliveryRecord, DeliveryStore } from '../delivery.js';
import type { NotifyPorts } from '../notify.js';

/** An in-memory DeliveryStore + NotifyPorts for tests of this package (the service uses packages/db's). */
export class MemoryDeliveryStore implements DeliveryStore, NotifyPorts {
  readonly deliveries = new Map<string, DeliveryRecord>();
  readonly attempts = new Map<string, AttemptRecord[]>();
  readonly secrets = new Map<string, string>();
  readonly enqueued: string[] = [];

  async get(id: string): Promise<DeliveryRecord | undefined> {
    const d = this.deliveries.get(id);
    return d && structuredClone(d);
  }
  async secretFor(tenantId: string): Promise<string> {
    const s = this.secrets.get(tenantId);
    if (!s) throw new Error(`no secret for tenant ${tenantId}`);
    return s;
  }
  async recordAttempt(id: string, a: AttemptRecord): Promise<void> {
    const d = this.deliveries.get(id)!;
    d.attempts = a.attempt;
    d.status = a.status;
    this.attempts.set(id, [...(this.attempts.get(id) ?? []), a]);
  }
  async createDelivery(d: Omit<DeliveryRecord, 'attempts' | 'status'>): Promise<boolean> {
    if (this.deliveries.has(d.id)) return false;
    this.deliveries.set(d.id, { ...d, attempts: 0, status: 'pending' });
    return true;
  }
  async enqueueDelivery(id: string): Promise<void> {
    this.enqueued.push(id);
  }
}
