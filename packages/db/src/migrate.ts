import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DbError } from './errors.js';

/**
 * Applies `prisma/migrations/<name>/migration.sql` files the way `prisma migrate deploy` does, without
 * Prisma's schema engine (not available offline): same `_prisma_migrations` bookkeeping, same advisory
 * lock id, same checksum rules, so either tool can take over from the other.
 */

/** The repository's `prisma/migrations` (this file sits in packages/db/src or packages/db/dist). */
export const defaultMigrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');

/** Prisma Migrate's advisory lock key: holding the same one keeps our runner and Prisma's apart. */
const PRISMA_ADVISORY_LOCK = 72707369;

// Exactly the table Prisma's schema engine creates for PostgreSQL.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions {
  /** Folder holding `<timestamp>_<name>/migration.sql` and `migration_lock.toml`; default the repo's `prisma/migrations`. */
  migrationsDir?: string;
  /** How long to wait for another migrator (ours or Prisma's) to finish, in ms; default 120000. */
  lockTimeoutMs?: number;
  /** Called once per migration as it is applied. */
  onApplied?: (name: string) => void;
}

export interface LocalMigration {
  name: string;
  script: string;
  checksum: string;
}

/** sha256 hex of the script, as Prisma stores it in `_prisma_migrations.checksum`. */
export function migrationChecksum(script: string): string {
  return createHash('sha256').update(script, 'utf8').digest('hex');
}

/** Prisma's own comparison: line endings may differ (git), and old engines wrote hex without zero padding. */
function checksumMatches(script: string, stored: string): boolean {
  const variants = [script, script.replace(/\r\n/g, '\n'), script.replace(/\r?\n/g, '\r\n')];
  return variants.some((s) => {
    const digest = createHash('sha256').update(s, 'utf8').digest();
    const padded = digest.toString('hex');
    const legacy = [...digest].map((b) => b.toString(16)).join('');
    return stored === (stored.length === 64 ? padded : legacy);
  });
}

/** Reads the migrations folder in apply order (names sort by their 14-digit timestamp). */
export function readMigrations(migrationsDir: string): LocalMigration[] {
  if (!existsSync(migrationsDir)) {
    throw new DbError('MIGRATIONS_DIR_INVALID', `migrations folder ${migrationsDir} does not exist`);
  }
  const lockFile = path.join(migrationsDir, 'migration_lock.toml');
  if (existsSync(lockFile)) {
    const provider = /provider\s*=\s*"([^"]+)"/.exec(readFileSync(lockFile, 'utf8'))?.[1];
    if (provider !== 'postgresql') {
      throw new DbError('MIGRATIONS_DIR_INVALID', `${lockFile} names provider "${provider ?? ''}", expected "postgresql"`);
    }
  }
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = path.join(migrationsDir, name, 'migration.sql');
      if (!existsSync(file)) throw new DbError('MIGRATIONS_DIR_INVALID', `migration ${name} has no migration.sql (${file})`);
      const script = readFileSync(file, 'utf8');
      return { name, script, checksum: migrationChecksum(script) };
    });
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies the pending migrations in order, each in its own transaction, while holding Prisma's
 * advisory lock; returns the names applied (empty when up to date). Refuses, before applying anything,
 * when an applied migration was edited or deleted locally or a previous attempt failed half-way.
 */
export async function migrate(database: string | pg.Pool, options: MigrateOptions = {}): Promise<string[]> {
  const local = readMigrations(options.migrationsDir ?? defaultMigrationsDir);
  const standalone = typeof database === 'string' ? new pg.Client({ connectionString: database }) : undefined;
  let client: pg.ClientBase;
  let release: (failed: boolean) => Promise<void>;
  if (standalone) {
    await standalone.connect();
    client = standalone;
    release = () => standalone.end();
  } else {
    const pooled = await (database as pg.Pool).connect();
    client = pooled;
    // A pooled connection that failed mid-way may still hold the session lock: destroy it, not reuse it.
    release = async (failed) => pooled.release(failed);
  }
  let failed = true;
  try {
    await acquireLock(client, options.lockTimeoutMs ?? 120_000);
    try {
      const applied = await applyPending(client, local, options.onApplied);
      failed = false;
      return applied;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]);
    }
  } finally {
    await release(failed);
  }
}

async function acquireLock(client: pg.ClientBase, timeoutMs: number): Promise<void> {
  // lock_timeout bounds advisory-lock waits too; reset so migrations themselves run unbounded.
  await client.query(`SET lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK]);
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') {
      throw new DbError('MIGRATION_LOCK_TIMEOUT', `another migrator held the migration lock for more than ${timeoutMs} ms`, { cause: err });
    }
    throw err;
  } finally {
    await client.query('RESET lock_timeout');
  }
}

async function applyPending(client: pg.ClientBase, local: LocalMigration[], onApplied?: (name: string) => void): Promise<string[]> {
  await client.query(CREATE_MIGRATIONS_TABLE);
  const { rows } = await client.query<AppliedRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY started_at ASC',
  );
  const byName = new Map(local.map((m) => [m.name, m]));
  const applied = new Set<string>();
  for (const row of rows) {
    if (row.rolled_back_at !== null) continue; // `prisma migrate resolve --rolled-back` marks retries like this
    if (row.finished_at === null) {
      throw new DbError(
        'MIGRATION_PREVIOUSLY_FAILED',
        `migration ${row.migration_name} started but never finished; fix the database, then mark it with \`prisma migrate resolve --rolled-back ${row.migration_name}\` (or --applied)`,
      );
    }
    const mine = byName.get(row.migration_name);
    if (!mine) {
      throw new DbError('MIGRATION_MISSING_LOCALLY', `migration ${row.migration_name} is applied to the database but missing from the migrations folder`);
    }
    if (!checksumMatches(mine.script, row.checksum)) {
      throw new DbError(
        'MIGRATION_CHECKSUM_MISMATCH',
        `migration ${row.migration_name} was modified after it was applied (database checksum ${row.checksum}, file ${mine.checksum}); add a new migration instead of editing an applied one`,
      );
    }
    applied.add(row.migration_name);
  }
  const done: string[] = [];
  for (const migration of local) {
    if (applied.has(migration.name)) continue;
    await applyOne(client, migration);
    done.push(migration.name);
    onApplied?.(migration.name);
  }
  return done;
}

async function applyOne(client: pg.ClientBase, migration: LocalMigration): Promise<void> {
  const id = randomUUID();
  await client.query('BEGIN');
  try {
    await client.query('INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)', [
      id,
      migration.checksum,
      migration.name,
    ]);
    await client.query(migration.script);
    await client.query('UPDATE _prisma_migrations SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1', [id]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    // Rolled back whole, so nothing is recorded: the next start retries it from a clean state.
    throw new DbError('MIGRATION_FAILED', `migration ${migration.name} failed and was rolled back: ${(err as Error).message}`, { cause: err });
  }
}

export interface MigrateCommandOptions extends MigrateOptions {
  /** Postgres connection string. */
  databaseUrl: string;
  /** Where progress lines go; default stdout. */
  print?: (line: string) => void;
}

/** `dynasyn db migrate`: applies pending migrations, prints one line each, returns the process exit code. */
export async function migrateCommand(options: MigrateCommandOptions): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  try {
    const applied = await migrate(options.databaseUrl, { ...options, onApplied: (name) => print(`applied ${name}`) });
    print(applied.length === 0 ? 'database is up to date' : `${applied.length} migration(s) applied`);
    return 0;
  } catch (err) {
    const code = err instanceof DbError ? `${err.code}: ` : '';
    print(`migration failed: ${code}${(err as Error).message}`);
    return 1;
  }
}
