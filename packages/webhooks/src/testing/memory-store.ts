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
  async createDelivery(d: Omit<DeliveryRecord, 'id' | 'attempts' | 'status'> & { eventId: string }): Promise<string> {
    const id = `d-${d.eventId}`;
    if (!this.deliveries.has(id)) this.deliveries.set(id, { ...d, id, attempts: 0, status: 'pending' });
    return id;
  }
  async enqueueDelivery(id: string): Promise<void> {
    this.enqueued.push(id);
  }
}
