import type pg from 'pg';
import type { ExpectedDatabase } from './prisma-schema.js';

/** What the database in `public` actually holds, in the same shape as `expectedDatabase` (Prisma's own table left out). */
export async function actualDatabase(client: pg.ClientBase): Promise<ExpectedDatabase> {
  const out: ExpectedDatabase = { enums: {}, tables: {}, indexes: {}, foreignKeys: {} };
  const enums = await client.query<{ name: string; label: string }>(`
    SELECT t.typname AS name, e.enumlabel AS label FROM pg_type t
    JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' ORDER BY t.typname, e.enumsortorder`);
  for (const row of enums.rows) (out.enums[row.name] ??= []).push(row.label);

  const columns = await client.query<{ table: string; column: string; type: string; notnull: boolean; default: string | null }>(`
    SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
           a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> '_prisma_migrations'
    ORDER BY c.relname, a.attnum`);
  for (const row of columns.rows) {
    (out.tables[row.table] ??= {})[row.column] = { type: row.type, nullable: !row.notnull, default: row.default };
  }

  const indexes = await client.query<{ name: string; table: string; columns: string[]; unique: boolean; primary: boolean }>(`
    SELECT i.relname AS name, t.relname AS table, ix.indisunique AS unique, ix.indisprimary AS primary,
           array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns
    FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'`);
  for (const row of indexes.rows) out.indexes[row.name] = { table: row.table, columns: row.columns, unique: row.unique, primary: row.primary };

  const actions: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };
  const fks = await client.query<{ name: string; table: string; columns: string[]; ref_table: string; ref_columns: string[]; del: string; upd: string }>(`
    SELECT con.conname AS name, t.relname AS table, rt.relname AS ref_table, con.confdeltype AS del, con.confupdtype AS upd,
           array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns,
           array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS ref_columns
    FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid JOIN pg_class rt ON rt.oid = con.confrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE con.contype = 'f' AND n.nspname = 'public'`);
  for (const row of fks.rows) {
    out.foreignKeys[row.name] = {
      table: row.table,
      columns: row.columns,
      references: { table: row.ref_table, columns: row.ref_columns },
      onDelete: actions[row.del]!,
      onUpdate: actions[row.upd]!,
    };
  }
  return out;
}
