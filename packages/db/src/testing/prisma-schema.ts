import { readFileSync } from 'node:fs';

/**
 * The database a Prisma schema implies on PostgreSQL, derived from schema.prisma with Prisma's naming and
 * type rules (the subset this project uses: scalar types, enums, @id, @default, @unique, @updatedAt,
 * @relation, @@index, @@unique). The schema-match test compares it with what the migrations create.
 */
export interface ExpectedColumn {
  type: string;
  nullable: boolean;
  /** The default as Postgres prints it (`pg_get_expr`), or null. */
  default: string | null;
}
export interface ExpectedIndex {
  table: string;
  columns: string[];
  unique: boolean;
  primary: boolean;
}
export interface ExpectedForeignKey {
  table: string;
  columns: string[];
  references: { table: string; columns: string[] };
  onDelete: string;
  onUpdate: string;
}
export interface ExpectedDatabase {
  enums: Record<string, string[]>;
  tables: Record<string, Record<string, ExpectedColumn>>;
  /** By index or constraint name. */
  indexes: Record<string, ExpectedIndex>;
  foreignKeys: Record<string, ExpectedForeignKey>;
}

const SCALARS: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Float: 'double precision',
};
const REFERENTIAL: Record<string, string> = { Cascade: 'CASCADE', SetNull: 'SET NULL', Restrict: 'RESTRICT', NoAction: 'NO ACTION', SetDefault: 'SET DEFAULT' };

interface Block {
  kind: 'model' | 'enum';
  name: string;
  lines: string[];
}

function blocks(source: string): Block[] {
  const clean = source.replace(/\/\/.*$/gm, '');
  return [...clean.matchAll(/^(model|enum)\s+(\w+)\s*\{([^}]*)\}/gm)].map((m) => ({
    kind: m[1] as 'model' | 'enum',
    name: m[2]!,
    lines: m[3]!
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  }));
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function expectedDatabase(schemaPath: string): ExpectedDatabase {
  const all = blocks(readFileSync(schemaPath, 'utf8'));
  const enums = Object.fromEntries(all.filter((b) => b.kind === 'enum').map((b) => [b.name, b.lines]));
  const models = new Set(all.filter((b) => b.kind === 'model').map((b) => b.name));
  const out: ExpectedDatabase = { enums, tables: {}, indexes: {}, foreignKeys: {} };
  for (const model of all.filter((b) => b.kind === 'model')) {
    const columns: Record<string, ExpectedColumn> = {};
    out.tables[model.name] = columns;
    for (const line of model.lines) {
      const block = /^@@(index|unique|id)\(\[([^\]]*)\]/.exec(line);
      if (block) {
        const cols = list(block[2]!);
        const suffix = block[1] === 'index' ? 'idx' : block[1] === 'unique' ? 'key' : 'pkey';
        const name = suffix === 'pkey' ? `${model.name}_pkey` : `${model.name}_${cols.join('_')}_${suffix}`;
        out.indexes[name] = { table: model.name, columns: cols, unique: suffix !== 'idx', primary: suffix === 'pkey' };
        continue;
      }
      const field = /^(\w+)\s+(\w+)(\[\]|\?)?\s*(.*)$/.exec(line);
      if (!field) throw new Error(`schema.prisma: cannot read line "${line}" of model ${model.name}`);
      const [, name, type, modifier, attrs] = field as unknown as [string, string, string, string | undefined, string];
      if (models.has(type)) {
        const rel = /@relation\(([^)]*)\)/.exec(attrs);
        const fields = rel && /fields:\s*\[([^\]]*)\]/.exec(rel[1]!);
        if (!rel || !fields) continue; // the back-relation side holds no column
        const refs = list(/references:\s*\[([^\]]*)\]/.exec(rel[1]!)![1]!);
        const cols = list(fields[1]!);
        const onDelete = /onDelete:\s*(\w+)/.exec(rel[1]!)?.[1] ?? (modifier === '?' ? 'SetNull' : 'Restrict');
        const onUpdate = /onUpdate:\s*(\w+)/.exec(rel[1]!)?.[1] ?? 'Cascade';
        out.foreignKeys[`${model.name}_${cols.join('_')}_fkey`] = {
          table: model.name,
          columns: cols,
          references: { table: type, columns: refs },
          onDelete: REFERENTIAL[onDelete]!,
          onUpdate: REFERENTIAL[onUpdate]!,
        };
        continue;
      }
      const isEnum = type in enums;
      const sqlType = isEnum ? `"${type}"` : SCALARS[type];
      if (!sqlType || modifier === '[]') throw new Error(`schema.prisma: unsupported type ${type}${modifier ?? ''} on ${model.name}.${name}`);
      columns[name] = { type: sqlType, nullable: modifier === '?', default: columnDefault(type, isEnum, attrs) };
      if (/@id\b/.test(attrs)) out.indexes[`${model.name}_pkey`] = { table: model.name, columns: [name], unique: true, primary: true };
      if (/@unique\b/.test(attrs)) out.indexes[`${model.name}_${name}_key`] = { table: model.name, columns: [name], unique: true, primary: false };
    }
  }
  return out;
}

/** Prisma's defaults as Postgres stores them; uuid()/cuid() and @updatedAt are filled by the client, not the database. */
function columnDefault(type: string, isEnum: boolean, attrs: string): string | null {
  const value = /@default\((.*?)\)(?:\s|$)/.exec(attrs)?.[1];
  if (value === undefined || /^(uuid|cuid|nanoid|ulid)\(/.test(value)) return null;
  if (value === 'now()') return 'CURRENT_TIMESTAMP';
  if (value === 'autoincrement()') throw new Error('autoincrement defaults are not mapped here');
  if (isEnum) return `'${value}'::"${type}"`;
  if (type === 'Json') return `'${JSON.parse(value) as string}'::jsonb`;
  if (type === 'String') return `'${JSON.parse(value) as string}'::text`;
  return value;
}
