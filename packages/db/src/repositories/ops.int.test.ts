import { createDb, type Db } from '../client.js';
import { migrate } from '../migrate.js';
import { createScratchDatabase, type ScratchDatabase } from '../scratch.js';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

let scratch: ScratchDatabase;
let db: Db;

beforeAll(async () => {
  scratch = await createScratchDatabase(ADMIN_URL, 'dynasyn_test_ops');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 4 });
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

async function job(tenantId: string, status: 'queued' | 'augmenting' | 'training' | 'sampling' | 'succeeded' | 'failed', quietSeconds = 0) {
  const r = await db.personalizations.create({ tenantId, subjects: [{ classWord: 'dog', maskKey: 'm.png' }], imageKey: 'i.png', options: {} });
  if (!r.created) throw new Error('expected a new row');
  const id = r.personalization.id;
  // the row as a worker would leave it, last written `quietSeconds` ago
  await db.prisma.$executeRaw`UPDATE "Personalization" SET status = ${status}::"PersonalizationStatus",
    "updatedAt" = now() - make_interval(secs => ${quietSeconds}::float8), "createdAt" = now() - make_interval(secs => ${quietSeconds}::float8) WHERE id = ${id}`;
  return id;
}

test('counts personalizations by status, and running work quiet for longer than its lease, from Postgres alone', async () => {
  const { tenant } = await db.tenants.create('ops');
  const empty = await db.ops.workSnapshot({ leaseSeconds: 60 });
  expect(empty.personalizations).toEqual({ queued: 0, augmenting: 0, training: 0, sampling: 0, succeeded: 0, failed: 0, canceled: 0 });
  expect(empty.stale).toEqual({
    augmenting: { count: 0, oldestSeconds: null },
    training: { count: 0, oldestSeconds: null },
    sampling: { count: 0, oldestSeconds: null },
  });
  expect(empty.oldestQueuedSeconds).toBeNull();

  await job(tenant.id, 'queued', 300);
  await job(tenant.id, 'augmenting', 5); // within its lease: working
  await job(tenant.id, 'training', 120); // quiet for 2 leases: stuck
  await job(tenant.id, 'training', 900);
  await job(tenant.id, 'training', 10);
  await job(tenant.id, 'succeeded', 5000); // finished long ago: never stale
  await job(tenant.id, 'failed', 5000);

  const s = await db.ops.workSnapshot({ leaseSeconds: 60 });
  expect(s.personalizations).toEqual({ queued: 1, augmenting: 1, training: 3, sampling: 0, succeeded: 1, failed: 1, canceled: 0 });
  expect(s.stale.training.count).toBe(2);
  expect(s.stale.training.oldestSeconds).toBeGreaterThanOrEqual(900);
  expect(s.stale.training.oldestSeconds).toBeLessThan(960);
  expect(s.stale.augmenting).toEqual({ count: 0, oldestSeconds: null });
  expect(s.oldestQueuedSeconds).toBeGreaterThanOrEqual(300);
  // the lease is the stage's: a longer one makes the 120 s quiet job healthy again
  expect((await db.ops.workSnapshot({ leaseSeconds: 600 })).stale.training.count).toBe(1);
});

test('counts webhook deliveries by status and sums recoveries when the schema has them', async () => {
  const { tenant } = await db.tenants.create('ops-hooks');
  for (const [i, status] of (['pending', 'delivered', 'failed', 'failed'] as const).entries()) {
    const d = await db.webhooks.createDelivery({
      tenantId: tenant.id,
      eventType: 'personalization.failed',
      eventId: `evt-ops-${i}`,
      url: 'https://x.example/h',
      payload: {},
    });
    await db.prisma.webhookDelivery.update({ where: { id: d.id }, data: { status } });
  }
  const s = await db.ops.workSnapshot({ leaseSeconds: 60 });
  expect(s.webhookDeliveries).toEqual({ pending: 1, delivered: 1, failed: 2 });

  const [column] = await db.prisma.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'Personalization' AND column_name = 'recoveries'`;
  if (Number(column?.n) === 0) {
    expect(s.recoveries).toBeNull();
    return;
  }
  const id = await job(tenant.id, 'training', 0);
  await db.prisma.$executeRaw`UPDATE "Personalization" SET recoveries = 3 WHERE id = ${id}`;
  expect((await db.ops.workSnapshot({ leaseSeconds: 60 })).recoveries).toEqual({ personalizations: 3, samples: 0 });
});
