/**
 * Reads the service's database the way an auditor would, without its code: row counts per table, and the
 * artifact rows of one personalization (table and columns found by name, so the test does not pin the schema).
 */
import type { TestServices } from './services.js';

export async function countRowsPerTable(s: TestServices): Promise<Record<string, number>> {
  const tables = await s.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations' ORDER BY 1`,
  );
  const out: Record<string, number> = {};
  for (const { table_name: t } of tables) {
    const [row] = await s.query<{ n: string }>(`SELECT count(*) AS n FROM "${t}"`);
    out[t] = Number(row!.n);
  }
  return out;
}

async function columns(s: TestServices, table: string): Promise<string[]> {
  return (
    await s.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, [table])
  ).map((r) => r.column_name);
}

/** `{kind, key}` of every artifact row of personalization `id`. */
export async function artifactRows(s: TestServices, id: string): Promise<{ kind: string; key: string }[]> {
  const [t] = await s.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name ILIKE 'artifact%' ORDER BY length(table_name) LIMIT 1`,
  );
  if (!t) throw new Error('no artifact table in the database');
  const cols = await columns(s, t.table_name);
  const fk = cols.find((c) => /^personali[sz]ation_?id$/i.test(c));
  const kind = cols.find((c) => /^kind$/i.test(c));
  const key = cols.find((c) => /^(storage_?key|key)$/i.test(c));
  if (!fk || !kind || !key) throw new Error(`artifact table ${t.table_name} lacks personalization id/kind/key columns: ${cols.join(', ')}`);
  return s.query<{ kind: string; key: string }>(`SELECT "${kind}" AS kind, "${key}" AS key FROM "${t.table_name}" WHERE "${fk}" = $1`, [id]);
}
