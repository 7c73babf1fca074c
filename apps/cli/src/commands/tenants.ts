/** `dynasyn tenants create NAME`: a tenant and its first API key, printed once (only its hash is stored). */
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { databaseUrlFrom } from './service-env.js';

export async function createTenant(env: NodeJS.ProcessEnv, name: string): Promise<void> {
  if (!name.trim()) throw new CliError('tenant name must not be empty');
  const { createDb, migrate } = await import('@dynasyn/db');
  const url = databaseUrlFrom(env);
  // As `serve` does: a fresh database gets its tables first, so the quickstart order does not matter.
  await migrate(url);
  const db = createDb(url, { maxConnections: 1 });
  try {
    const { tenant, apiKey } = await db.tenants.create(name.trim());
    process.stdout.write(`tenant: ${tenant.id}\napi key: ${apiKey}\n`);
    process.stderr.write('keep the key now: it is stored hashed and cannot be shown again\n');
  } finally {
    await db.close();
  }
}

export function registerTenantCommands(program: Command): void {
  program
    .command('tenants')
    .description('tenants of the service (DATABASE_URL)')
    .command('create')
    .description('create a tenant and print its API key once')
    .argument('<name>', 'tenant name')
    .action(async (name: string) => {
      await createTenant(process.env, name);
    });
}
