import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { defaultMigrationsDir, migrate, migrateCommand, migrationChecksum, readMigrations } from './migrate.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch.js';
import { Prisma } from './generated/client.js';
import { expectedDatabase } from './testing/prisma-schema.js';
import { actualDatabase } from './testing/database-shape.js';

const ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const schemaPath = path.resolve(defaultMigrationsDir, '..', 'schema.prisma');
/** Every migration of the repository, in the order they apply. */
const ALL = readMigrations(defaultMigrationsDir);

let db: ScratchDatabase;
let pool: pg.Pool;
const scratch: ScratchDatabase[] = [];

beforeAll(async () => {
  db = await createScratchDatabase(ADMIN_URL);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
});
afterAll(async () => {
  await pool.end();
  await Promise.all([db, ...scratch].map((d) => d.drop()));
});

test('applies every migration to an empty database and records them as Prisma does', async () => {
  const applied = await migrate(db.url);
  expect(applied).toEqual(ALL.map((m) => m.name));
  const { rows } = await pool.query(
    'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations ORDER BY migration_name',
  );
  expect(rows).toEqual(
    ALL.map((m) => ({
      migration_name: m.name,
      checksum: migrationChecksum(readFileSync(path.join(defaultMigrationsDir, m.name, 'migration.sql'), 'utf8')),
      finished_at: expect.any(Date),
      rolled_back_at: null,
      applied_steps_count: 1,
      logs: null,
    })),
  );
  // Prisma's table, column for column (types as its schema engine creates them).
  const columns = await pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
  );
  expect(columns.rows.map((c) => `${c.column_name} ${c.data_type} ${c.is_nullable}`)).toEqual([
    'id character varying NO',
    'checksum character varying NO',
    'finished_at timestamp with time zone YES',
    'migration_name character varying NO',
    'logs text YES',
    'rolled_back_at timestamp with time zone YES',
    'started_at timestamp with time zone NO',
    'applied_steps_count integer NO',
  ]);
});

test('the migrated database is exactly the Prisma schema: tables, columns, types, nullability, defaults, indexes, foreign keys', async () => {
  await migrate(pool); // a no-op after the first test; lets this test run alone (-t)
  const expected = expectedDatabase(schemaPath);
  // The parser must see what the generated client sees, or the comparison below proves nothing.
  expect(Object.keys(expected.tables).sort()).toEqual(Object.values(Prisma.ModelName).sort());
  for (const model of Object.values(Prisma.ModelName)) {
    const fields = (Prisma as unknown as Record<string, Record<string, string>>)[`${model}ScalarFieldEnum`]!;
    expect(Object.keys(expected.tables[model]!).sort()).toEqual(Object.values(fields).sort());
  }
  const client = await pool.connect();
  try {
    const actual = await actualDatabase(client);
    expect(actual.enums).toEqual(expected.enums);
    expect(actual.tables).toEqual(expected.tables);
    expect(actual.indexes).toEqual(expected.indexes);
    expect(actual.foreignKeys).toEqual(expected.foreignKeys);
  } finally {
    client.release();
  }
});

test('running again is a no-op', async () => {
  expect(await migrate(pool)).toEqual([]);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM _prisma_migrations');
  expect(rows[0].n).toBe(ALL.length);
});

test('two concurrent starters apply each migration once', async () => {
  const fresh = await createScratchDatabase(ADMIN_URL);
  scratch.push(fresh);
  const [a, b] = await Promise.all([migrate(fresh.url), migrate(fresh.url)]);
  expect([...a, ...b].sort()).toEqual(ALL.map((m) => m.name));
  const check = new pg.Client({ connectionString: fresh.url });
  await check.connect();
  const { rows } = await check.query('SELECT count(*)::int AS n FROM _prisma_migrations');
  await check.end();
  expect(rows[0].n).toBe(ALL.length);
});

test('waiting for another migrator gives up after lockTimeoutMs with a clear error', async () => {
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query('SELECT pg_advisory_lock(72707369)'); // what `prisma migrate deploy` holds while it runs
    await expect(migrate(pool, { lockTimeoutMs: 200 })).rejects.toMatchObject({ code: 'MIGRATION_LOCK_TIMEOUT' });
  } finally {
    await holder.end();
  }
  expect(await migrate(pool)).toEqual([]); // the pool is still usable: the failed connection was not reused holding state
});

describe('with a copy of the migrations folder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dynasyn-migrations-'));
    cpSync(defaultMigrationsDir, dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('an applied migration whose file changed is refused, naming it', async () => {
    const file = path.join(dir, '20261129120000_init', 'migration.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited\n`);
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toMatchObject({
      code: 'MIGRATION_CHECKSUM_MISMATCH',
      message: expect.stringContaining('20261129120000_init'),
    });
  });

  test('CRLF line endings (a Windows checkout) still match, as with Prisma', async () => {
    const file = path.join(dir, '20261129120000_init', 'migration.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'));
    expect(await migrate(db.url, { migrationsDir: dir })).toEqual([]);
  });

  test('an applied migration missing locally is refused', async () => {
    rmSync(path.join(dir, '20261129120000_init'), { recursive: true });
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toMatchObject({ code: 'MIGRATION_MISSING_LOCALLY' });
  });

  test('a failing migration rolls back whole, records nothing, and the next ones wait', async () => {
    for (const [name, sql] of [
      ['20261129130000_bad', 'CREATE TABLE "Half" ("id" TEXT);\nSELECT no_such_function();\n'],
      ['20261129140000_after', 'CREATE TABLE "After" ("id" TEXT);\n'],
    ] as const) {
      cpSync(path.join(dir, '20261129120000_init'), path.join(dir, name), { recursive: true });
      writeFileSync(path.join(dir, name, 'migration.sql'), sql);
    }
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('20261129130000_bad'),
    });
    const tables = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_name IN ('Half', 'After')`);
    expect(tables.rows).toEqual([]);
    const { rows } = await pool.query('SELECT migration_name FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(ALL.map((m) => m.name));
  });

  test('a migration Prisma left unfinished blocks, with the resolve command in the message', async () => {
    await pool.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES ('00000000-0000-0000-0000-000000000001', 'x', '20261129150000_stuck', now(), 0)`,
    );
    try {
      await expect(migrate(db.url, { migrationsDir: dir })).rejects.toMatchObject({
        code: 'MIGRATION_PREVIOUSLY_FAILED',
        message: expect.stringContaining('prisma migrate resolve'),
      });
    } finally {
      await pool.query(`DELETE FROM _prisma_migrations WHERE migration_name = '20261129150000_stuck'`);
    }
  });
});

test('migrateCommand prints what it did and returns an exit code', async () => {
  const lines: string[] = [];
  expect(await migrateCommand({ databaseUrl: db.url, print: (l) => lines.push(l) })).toBe(0);
  expect(lines).toEqual(['database is up to date']);
  const failures: string[] = [];
  expect(await migrateCommand({ databaseUrl: db.url, migrationsDir: '/nonexistent', print: (l) => failures.push(l) })).toBe(1);
  expect(failures[0]).toMatch(/MIGRATIONS_DIR_INVALID.*\/nonexistent/);
});
