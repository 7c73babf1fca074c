/** stageDbFrom against a fresh Postgres database: what the stages read and write lands in the rows the API serves. */
import { createDb, createScratchDatabase, migrate, type Db, type ScratchDatabase } from '@dynasyn/db';
import { stageDbFrom } from './db-adapter.js';
import type { StageDb } from './ports.js';

let scratch: ScratchDatabase;
let db: Db;
let stageDb: StageDb;
let tenantId: string;

beforeAll(async () => {
  scratch = await createScratchDatabase('postgresql://postgres@127.0.0.1:5432/postgres');
  await migrate(scratch.url);
  db = createDb(scratch.url, { maxConnections: 4 });
  stageDb = stageDbFrom(db, async () => undefined);
  tenantId = (await db.tenants.create('stages')).tenant.id;
});
afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

async function personalization(options: object) {
  const r = await db.personalizations.create({ tenantId, subjects: [{ classWord: 'dog', maskKey: 'm.png' }], imageKey: 'i.png', options });
  if (!r.created) throw new Error('expected a new row');
  return r.personalization.id;
}

const item = (prompt: string, seed: number) => ({ prompt, seed, settings: { steps: 4 }, artifactKey: `samples/${prompt}-${seed}.png` });

it('reads the stored options resolved, and refuses a row whose options break the contract for good', async () => {
  const good = await stageDb.getPersonalization(await personalization({ preset: 'tiny', steps: 7 }));
  expect(good).toMatchObject({
    status: 'queued',
    subjects: [{ classWord: 'dog', maskKey: 'm.png' }],
    options: { preset: 'tiny', train: { phase1: { steps: 7 } } },
  });
  const bad = await personalization({ preset: 'tiny', steps: -1 });
  await expect(stageDb.getPersonalization(bad)).rejects.toMatchObject({ code: 'BAD_OPTION', permanent: true });
});

it("gives the stages each subject's noun phrase, where the client gave one, and the placeholder rows option", async () => {
  const r = await db.personalizations.create({
    tenantId,
    subjects: [
      { classWord: 'dog', nounPhrase: 'brown checked dog with a hat', maskKey: 'm0.png' },
      { classWord: 'ball', maskKey: 'm1.png' },
    ],
    imageKey: 'i.png',
    options: { preset: 'tiny', placeholderVectors: 6 },
  });
  if (!r.created) throw new Error('expected a new row');
  const job = await stageDb.getPersonalization(r.personalization.id);
  expect(job?.subjects).toEqual([
    { classWord: 'dog', nounPhrase: 'brown checked dog with a hat', maskKey: 'm0.png' },
    { classWord: 'ball', maskKey: 'm1.png' },
  ]);
  expect(job?.options.train.placeholderVectors).toBe(6);
});

it("saveSamples stores a request's finished samples; a re-run with another set replaces them, the same set updates in place", async () => {
  const id = await personalization({ preset: 'tiny' });
  const save = (items: ReturnType<typeof item>[], requestId = 'r1') => stageDb.saveSamples({ tenantId, personalizationId: id, requestId, items });
  await save([item('a', 1), item('b', 2)]);
  await save([item('other', 9)], 'r2');
  const first = await stageDb.getRequestSamples('r1');
  expect(first.map((s) => [s.prompt, s.status])).toEqual([
    ['a', 'succeeded'],
    ['b', 'succeeded'],
  ]);

  await save([item('c', 3), item('d', 4), item('e', 5)]);
  const replaced = await db.samples.listByRequest('r1');
  expect(replaced.map((s) => [s.prompt, s.artifactKey])).toEqual([
    ['c', 'samples/c-3.png'],
    ['d', 'samples/d-4.png'],
    ['e', 'samples/e-5.png'],
  ]);
  expect(replaced.map((s) => s.id)).not.toContain(first[0]!.id);

  await save([item('c', 3), item('d', 4), item('f', 6)]);
  const again = await db.samples.listByRequest('r1');
  expect(again.map((s) => s.id)).toEqual(replaced.map((s) => s.id));
  expect(again[2]!.artifactKey).toBe('samples/f-6.png');
  // the other request is untouched
  expect((await db.samples.listByRequest('r2')).map((s) => s.prompt)).toEqual(['other']);
});
