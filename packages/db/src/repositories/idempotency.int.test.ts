/**
 * The Idempotency-Key protocol (idempotency.ts) against a fresh Postgres database: the rows and the key's answer
 * commit together, retries replay, another request is refused, concurrent requests create once, and a discard
 * frees the key.
 */
import { createDb, type Db } from '../client.js';
import { migrate } from '../migrate.js';
import { createScratchDatabase, type ScratchDatabase } from '../scratch.js';

let scratch: ScratchDatabase;
let db: Db;

beforeAll(async () => {
  scratch = await createScratchDatabase('postgresql://postgres@127.0.0.1:5432/postgres');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 8 });
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

const subjects = [{ classWord: 'dog', maskKey: 'masks/0.png' }];
const answer = (p: { id: string }) => ({ status: 202, body: { id: p.id, status: 'queued' } });
const rowsOf = (tenantId: string) => db.prisma.personalization.count({ where: { tenantId } });
const keysOf = (tenantId: string) => db.prisma.idempotencyKey.count({ where: { tenantId } });

describe('personalizations.create with a key', () => {
  test('creates one row; a retry replays the stored response; another request with the key is refused', async () => {
    const tenant = (await db.tenants.create('idem')).tenant;
    const input = { tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} };
    const idem = { key: 'k-1', requestHash: 'h1', response: answer };
    const first = await db.personalizations.create(input, idem);
    if (!first.created) throw new Error('expected a new row');
    expect(first.idempotency).toMatchObject({
      responseStatus: 202,
      responseBody: { id: first.personalization.id, status: 'queued' },
      personalizationId: first.personalization.id,
    });
    const retry = await db.personalizations.create(input, idem);
    expect(retry).toEqual({ created: false, idempotency: first.idempotency });
    await expect(db.personalizations.create(input, { ...idem, requestHash: 'h2' })).rejects.toMatchObject({ name: 'DbError', code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await rowsOf(tenant.id)).toBe(1);
    // Keys are per tenant: another tenant may use the same one.
    const other = (await db.tenants.create('idem-2')).tenant;
    expect((await db.personalizations.create({ ...input, tenantId: other.id }, idem)).created).toBe(true);
  });

  test('of eight concurrent creates with one key, one creates the row and the others replay its answer', async () => {
    const tenant = (await db.tenants.create('race')).tenant;
    const input = { tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} };
    const idem = { key: 'race', requestHash: 'h', response: answer };
    const results = await Promise.all(Array.from({ length: 8 }, () => db.personalizations.create(input, idem)));
    const created = results.filter((r) => r.created);
    expect(created).toHaveLength(1);
    expect(new Set(results.map((r) => JSON.stringify(r.idempotency!.responseBody))).size).toBe(1);
    // the losers' rows rolled back with their transactions
    expect(await rowsOf(tenant.id)).toBe(1);
    expect(await keysOf(tenant.id)).toBe(1);
  });

  test('of concurrent creates with one key and different requests, one wins and the other is refused, leaving no row', async () => {
    const tenant = (await db.tenants.create('race-2')).tenant;
    const input = { tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} };
    const results = await Promise.allSettled([
      db.personalizations.create(input, { key: 'k', requestHash: 'a', response: answer }),
      db.personalizations.create(input, { key: 'k', requestHash: 'b', response: answer }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'IDEMPOTENCY_KEY_REUSED' } });
    expect(await rowsOf(tenant.id)).toBe(1);
  });

  test('a response builder that throws rolls the row back and stores no key', async () => {
    const tenant = (await db.tenants.create('throws')).tenant;
    const input = { tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} };
    const failing = {
      key: 'k',
      requestHash: 'h',
      response: () => {
        throw new Error('no answer');
      },
    };
    await expect(db.personalizations.create(input, failing)).rejects.toThrow('no answer');
    expect([await rowsOf(tenant.id), await keysOf(tenant.id)]).toEqual([0, 0]);
    expect((await db.personalizations.create(input, { ...failing, response: answer })).created).toBe(true);
  });

  test('discard removes the row and frees its key for a fresh create; another tenant cannot discard it', async () => {
    const tenant = (await db.tenants.create('discard')).tenant;
    const other = (await db.tenants.create('discard-other')).tenant;
    const input = { tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} };
    const idem = { key: 'k', requestHash: 'h', response: answer };
    const first = await db.personalizations.create(input, idem);
    if (!first.created) throw new Error('expected a new row');
    await db.personalizations.discard(other.id, first.personalization.id, 'k');
    expect(await db.personalizations.get(tenant.id, first.personalization.id)).not.toBeNull();
    expect(await db.idempotency.find(tenant.id, 'k')).not.toBeNull();
    await db.personalizations.discard(tenant.id, first.personalization.id, 'k');
    expect(await db.personalizations.get(tenant.id, first.personalization.id)).toBeNull();
    expect(await db.idempotency.find(tenant.id, 'k')).toBeNull();
    const again = await db.personalizations.create(input, idem);
    expect(again.created).toBe(true);
    expect(again.created && again.personalization.id).not.toBe(first.personalization.id);
    // without a key, only the row goes
    const plain = await db.personalizations.create(input);
    if (!plain.created) throw new Error('expected a new row');
    await db.personalizations.discard(tenant.id, plain.personalization.id);
    expect(await db.personalizations.get(tenant.id, plain.personalization.id)).toBeNull();
    expect(await db.idempotency.find(tenant.id, 'k')).not.toBeNull();
  });
});

describe('samples.createManyIdempotently', () => {
  async function setup(name: string) {
    const tenant = (await db.tenants.create(name)).tenant;
    const job = await db.personalizations.create({ tenantId: tenant.id, subjects, imageKey: 'i.png', options: {} });
    if (!job.created) throw new Error('expected a new row');
    const request = (requestId: string) => ({
      tenantId: tenant.id,
      personalizationId: job.personalization.id,
      requestId,
      items: [
        { prompt: 'a dog', seed: 1, settings: {} },
        { prompt: 'a dog', seed: 2, settings: { steps: 4 } },
      ],
    });
    const idem = {
      key: 's-1',
      requestHash: 'h',
      response: (rows: { id: string; seed: number }[]) => ({ status: 202, body: { items: rows.map((r) => ({ id: r.id, seed: r.seed })) } }),
    };
    return { tenant, personalizationId: job.personalization.id, request, idem };
  }

  test('creates the rows in order with the answer; a retry replays it; another request with the key is refused', async () => {
    const s = await setup('samples-idem');
    const first = await db.samples.createManyIdempotently(s.request('r1'), s.idem);
    if (!first.created) throw new Error('expected new rows');
    expect(first.samples.map((r) => r.seed)).toEqual([1, 2]);
    expect(first.idempotency).toMatchObject({
      personalizationId: s.personalizationId,
      responseBody: { items: first.samples.map((r) => ({ id: r.id, seed: r.seed })) },
    });
    expect(await db.samples.createManyIdempotently(s.request('r2'), s.idem)).toEqual({ created: false, idempotency: first.idempotency });
    await expect(db.samples.createManyIdempotently(s.request('r3'), { ...s.idem, requestHash: 'other' })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect((await db.samples.list(s.tenant.id, s.personalizationId)).map((r) => r.requestId)).toEqual(['r1', 'r1']);
  });

  test('concurrent requests with one key create one set of rows', async () => {
    const s = await setup('samples-race');
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((r) => db.samples.createManyIdempotently(s.request(r), s.idem)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await db.samples.list(s.tenant.id, s.personalizationId)).toHaveLength(2);
  });

  test('discardRequest removes the rows of one request with the key; a retry creates them afresh', async () => {
    const s = await setup('samples-discard');
    const first = await db.samples.createManyIdempotently(s.request('r1'), s.idem);
    expect(first.created).toBe(true);
    await db.samples.createMany(s.tenant.id, s.personalizationId, 'keep', [{ prompt: 'kept', seed: 3, settings: {} }]);
    await db.samples.discardRequest(s.tenant.id, 'r1', s.idem.key);
    expect((await db.samples.list(s.tenant.id, s.personalizationId)).map((r) => r.requestId)).toEqual(['keep']);
    expect(await db.idempotency.find(s.tenant.id, s.idem.key)).toBeNull();
    expect((await db.samples.createManyIdempotently(s.request('r2'), s.idem)).created).toBe(true);
  });
});
