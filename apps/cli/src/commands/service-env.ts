/**
 * The environment of `dynasyn serve`, `dynasyn db migrate` and `dynasyn tenants create` (issue 5's exact
 * contract), validated once; the only place the CLI reads process.env.
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { CliError } from './errors.js';

const bool = z.enum(['true', 'false', '1', '0', '']).default('false').transform((v) => v === 'true' || v === '1');
const nonEmpty = (v: string | undefined) => (v === '' ? undefined : v);

const schema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be postgres://user@host:port/db'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be redis://host:port[/db]').default('redis://127.0.0.1:6379'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  /** BullMQ key prefix, so several deployments or test runs share one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('dynasyn'),
  STORAGE_URL: z.string().optional().transform(nonEmpty),
  S3_ENDPOINT: z.string().url().optional(),
  AWS_REGION: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  BACKBONE: z.string().optional().transform(nonEmpty),
  WEBHOOK_ALLOW_PRIVATE: bool,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds to let running stages checkpoint and requests finish on SIGINT/SIGTERM. */
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().positive().default(20),
  /** Workers to run in this process: comma list, `all` (default) or `none` (API only). */
  WORKERS: z.string().optional(),
  /** Lock of a running stage job, seconds, renewed every half: a killed worker's job is taken over this long after. */
  STAGE_LOCK_SECONDS: z.coerce.number().positive().default(60),
  /** Where the default tiny bundle is created on first use. */
  XDG_CACHE_HOME: z.string().optional(),
});

export interface ServiceEnv extends Omit<z.output<typeof schema>, 'STORAGE_URL'> {
  /** Always set: the default is a local directory under the working directory. */
  STORAGE_URL: string;
}

/** Parses `source` (process.env) for the service commands; every problem named in one CliError. */
export function parseServiceEnv(source: NodeJS.ProcessEnv, cwd = process.cwd()): ServiceEnv {
  const r = schema.safeParse(source);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join('.') || 'environment'} ${i.message}`).join('; ');
    throw new CliError(`invalid environment: ${what}`);
  }
  const storage = r.data.STORAGE_URL ?? pathToFileURL(path.resolve(cwd, '.dynasyn/storage')).href;
  return { ...r.data, STORAGE_URL: storage };
}

/** Only DATABASE_URL (db migrate, tenants create). */
export function databaseUrlFrom(source: NodeJS.ProcessEnv): string {
  const url = source.DATABASE_URL;
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new CliError('DATABASE_URL must be set to postgres://user@host:port/db');
  return url;
}

/** The S3 settings packages/storage takes, from the usual AWS variables and S3_ENDPOINT. */
export function s3OptionsFrom(env: ServiceEnv) {
  return {
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : {}),
  };
}

/** Cache directory of generated and downloaded bundles ($XDG_CACHE_HOME/dynasyn, else ~/.cache/dynasyn). */
export function cacheDirOf(env: Pick<ServiceEnv, 'XDG_CACHE_HOME'>): string {
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'dynasyn');
}
