/** `dynasyn db migrate`: applies pending SQL migrations (prisma/migrations) to DATABASE_URL. */
import type { Command } from 'commander';
import { databaseUrlFrom } from './service-env.js';

export async function dbMigrate(env: NodeJS.ProcessEnv): Promise<void> {
  const { migrate } = await import('@dynasyn/db');
  const applied = await migrate(databaseUrlFrom(env), { onApplied: (name) => process.stdout.write(`applied ${name}\n`) });
  process.stdout.write(applied.length === 0 ? 'database is up to date\n' : `${applied.length} migration(s) applied\n`);
}

export function registerDbCommands(program: Command): void {
  program
    .command('db')
    .description('the service database (DATABASE_URL)')
    .command('migrate')
    .description('apply pending migrations')
    .action(async () => {
      await dbMigrate(process.env);
    });
}
