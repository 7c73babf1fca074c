/**
 * Fenced writes against a fresh Postgres database: a stage attempt's writes land while its epoch holds and are
 * refused, changing nothing, once a takeover moved the epoch on, including a write that was waiting on the
 * takeover's uncommitted UPDATE.
 */
import pg from 'pg';
import { createDb, type Db } from '../client.js';
import { migrate } from '../migrate.js';
import { createScratchDatabase, type ScratchDatabase } from '../scratch.js';

let scratch: ScratchDatabase;
let db: Db;
let tenantId: string;

beforeAll(async () => {
  scratch = await createScratchDatabase('postgresql://postgres@127.0.0.1:5432/postgres');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 4 });
  tenantId = (await db.tenants.create('fence')).tenant.id;
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

async function newJob(): Promise<string> {
  const r = await db.personalizations.create({ tenantId, subjects: [{ classWord: 'dog', maskKey: 'm.png' }], imageKey: 'i.png', options: {} });
  if (!r.created) throw new Error('expected a new row');
  return r.personalization.id;
}

const artifact = (personalizationId: string, key: string) => ({
  personalizationId,
  kind: 'metrics' as const,
  key,
  sha256: 'x',
  size: 1,
  contentType: 'application/json',
});
const delivery = (personalizationId: string, eventId: string) => ({
  tenantId,
  personalizationId,
  eventType: 'personalization.failed',
  eventId,
  url: 'https://hooks.example/x',
  payload: {},
});

/** Everything a stage attempt can write about one personalization. */
async function written(id: string) {
  const row = await db.personalizations.findById(id);
  return {
    status: row!.status,
    progress: row!.progress,
    error: row!.error,
    epoch: row!.epoch,
    artifacts: (await db.artifacts.list(id)).map((a) => a.key),
    samples: (await db.samples.list(tenantId, id)).map((s) => [s.requestId, s.status]),
    deliveries: (await db.webhooks.list(tenantId, { personalizationId: id })).map((d) => d.eventId),
  };
}

it("an attempt's writes land while its epoch holds, each marks progress, and all are refused once it is superseded", async () => {
  const id = await newJob();
  const attempt = db.fenced({ personalizationId: id, epoch: 0 });
  expect((await db.personalizations.findById(id))!.progressAt).toBeNull();
  await attempt.updateStatus('augmenting');
  await attempt.setProgress('augment', 1, 4);
  await attempt.recordArtifact(artifact(id, 'a.json'));
  const progressAt = (await db.personalizations.findById(id))!.progressAt;
  expect(progressAt).toBeInstanceOf(Date);
  expect(Math.abs(progressAt!.getTime() - Date.now())).toBeLessThan(60_000);
  const before = await written(id);
  expect(before).toMatchObject({ status: 'augmenting', progress: [{ stage: 'augment', step: 1, total: 4 }], artifacts: ['a.json'], epoch: 0 });

  // the reconciler's takeover: one conditional UPDATE; a second one for the same epoch loses
  expect(await db.personalizations.supersede(id, 0, { recovery: true })).toEqual({ epoch: 1, recoveries: 1 });
  expect(await db.personalizations.supersede(id, 0, { recovery: true })).toBeNull();
  const taken = await written(id);
  const takenAt = (await db.personalizations.findById(id))!.progressAt;

  const refused = { code: 'EPOCH_SUPERSEDED', permanent: true };
  await expect(attempt.check()).rejects.toMatchObject(refused);
  await expect(attempt.updateStatus('failed', { error: { code: 'X', message: 'stale' } })).rejects.toMatchObject(refused);
  await expect(attempt.setProgress('augment', 3, 4)).rejects.toMatchObject(refused);
  await expect(attempt.recordArtifact(artifact(id, 'b.json'))).rejects.toMatchObject(refused);
  await expect(attempt.recordArtifact(artifact(id, 'a.json'))).rejects.toMatchObject(refused);
  await expect(
    attempt.replaceRequest({ tenantId, personalizationId: id, requestId: `${id}-initial`, items: [{ prompt: 'p', seed: 0, settings: {} }] }),
  ).rejects.toMatchObject(refused);
  await expect(attempt.createDelivery(delivery(id, 'msg_stale'))).rejects.toMatchObject(refused);
  expect(await written(id)).toEqual({ ...before, epoch: 1 });
  expect(await written(id)).toEqual(taken);
  // a refused write is no sign of progress either
  expect((await db.personalizations.findById(id))!.progressAt).toEqual(takenAt);

  // the new epoch's attempt writes as before
  const next = db.fenced({ personalizationId: id, epoch: 1 });
  await next.setProgress('augment', 4, 4);
  await next.createDelivery(delivery(id, 'msg_new'));
  expect(await written(id)).toMatchObject({ progress: [{ stage: 'augment', step: 4, total: 4 }], deliveries: ['msg_new'] });
});

it('a write waiting on an uncommitted takeover is refused when the takeover commits, and lands when it rolls back', async () => {
  const pool = new pg.Pool({ connectionString: scratch.url, max: 2 });
  try {
    for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
      const id = await newJob();
      const attempt = db.fenced({ personalizationId: id, epoch: 0 });
      await attempt.updateStatus('training');
      const takeover = await pool.connect();
      try {
        await takeover.query('BEGIN');
        await takeover.query(`UPDATE "Personalization" SET "epoch" = "epoch" + 1 WHERE "id" = $1 AND "epoch" = 0`, [id]);
        // the attempt's write blocks on the row the takeover holds
        let settled = false;
        const write = attempt.recordArtifact(artifact(id, 'late.json')).finally(() => (settled = true));
        write.catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
        expect([outcome, settled]).toEqual([outcome, false]);
        await takeover.query(outcome);
        if (outcome === 'COMMIT') await expect(write).rejects.toMatchObject({ code: 'EPOCH_SUPERSEDED' });
        else await write;
      } finally {
        takeover.release();
      }
      expect([outcome, (await db.artifacts.list(id)).map((a) => a.key)]).toEqual([outcome, outcome === 'COMMIT' ? [] : ['late.json']]);
    }
  } finally {
    await pool.end();
  }
});

it("a sample request's job writes only its own rows and only under its epoch; a takeover counts a recovery on its open rows", async () => {
  const id = await newJob();
  const [a, b] = await db.samples.createMany(tenantId, id, 'req-1', [
    { prompt: 'p', seed: 0, settings: {} },
    { prompt: 'p', seed: 1, settings: {} },
  ]);
  const [other] = await db.samples.createMany(tenantId, id, 'req-2', [{ prompt: 'p', seed: 2, settings: {} }]);
  const job = db.fenced({ requestId: 'req-1', epoch: 0 });
  await job.updateSample(a!.id, { status: 'succeeded', artifactKey: 'a.png' });
  await expect(job.updateSample(other!.id, { status: 'failed' })).rejects.toThrow();
  await expect(job.setProgress('sample', 1, 1)).rejects.toThrow(TypeError);

  expect(await db.samples.supersedeRequest('req-1', 0, { recovery: true })).toEqual({ epoch: 1, recoveries: 1 });
  expect(await db.samples.supersedeRequest('req-1', 0, { recovery: true })).toBeNull();
  await expect(job.updateSample(b!.id, { status: 'succeeded', artifactKey: 'b.png' })).rejects.toMatchObject({ code: 'EPOCH_SUPERSEDED' });
  await expect(job.recordArtifact(artifact(id, 'b.png'))).rejects.toMatchObject({ code: 'EPOCH_SUPERSEDED' });
  const rows = await db.samples.listByRequest('req-1');
  // the finished row keeps its count; every row moves to the new epoch
  expect(rows.map((s) => [s.status, s.recoveries, s.epoch])).toEqual([
    ['succeeded', 0, 1],
    ['queued', 1, 1],
  ]);
  expect((await db.samples.listByRequest('req-2')).map((s) => [s.status, s.epoch])).toEqual([['queued', 0]]);
  const open = (await db.samples.listUnfinishedRequests({ createdBefore: new Date(Date.now() + 1000) })).find((r) => r.requestId === 'req-1');
  expect(open).toMatchObject({ epoch: 1, recoveries: 1 });
  expect(open!.progressAt).toBeInstanceOf(Date);
  await db.fenced({ requestId: 'req-1', epoch: 1 }).updateSample(b!.id, { status: 'succeeded', artifactKey: 'b.png' });
  expect((await db.samples.listByRequest('req-1')).map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
});

it('a fenced write in flight when the event loop stops for a long onnxruntime call (7 s here) still lands', async () => {
  // A worker's training step or sample blocks its event loop for seconds to minutes, while a progress event or
  // the background checkpoint upload has a fenced write in flight. Prisma's interactive transactions expire 5 s
  // after they start: a transaction must not fail because its caller's thread was busy.
  const id = await newJob();
  const attempt = db.fenced({ personalizationId: id, epoch: 0 });
  await attempt.check();
  const holder = new pg.Client({ connectionString: scratch.url });
  await holder.connect();
  try {
    // hold the fence row, so that each write below has started (and waits on the server) when the loop stops
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM "Personalization" WHERE "id" = $1 FOR UPDATE', [id]);
    const pending = [
      attempt.updateStatus('augmenting'),
      attempt.setProgress('augment', 1, 2),
      attempt.recordArtifact(artifact(id, 'checkpoints/train.ckpt')),
      attempt.check(),
    ];
    await new Promise((r) => setTimeout(r, 300));
    void holder.query('COMMIT');
    const until = Date.now() + 7000;
    while (Date.now() < until); // a synchronous call, as onnxruntime-node's run is on the worker's thread
    await expect(Promise.all(pending)).resolves.toHaveLength(4);
  } finally {
    await holder.end();
  }
  expect(await written(id)).toMatchObject({ status: 'augmenting', artifacts: ['checkpoints/train.ckpt'] });
}, 30_000);
