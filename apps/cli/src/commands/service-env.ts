/**
 * The environment of `dynasyn serve`, `dynasyn db migrate` and `dynasyn tenants create`, validated once; the only
 * place the CLI reads process.env for them. serve runs the API and the stage workers, so its schema is made of
 * the same @dynasyn/config pieces as theirs, with the same defaults.
 */
import os from 'node:os';
import path from 'node:path';
import {
  EnvError,
  checkStageLease,
  count,
  databaseEnv,
  httpEnv,
  logEnv,
  parseEnvironment,
  queueEnv,
  shutdownEnv,
  stageEnv,
  localStorageEnv,
  webhookEnv,
} from '@dynasyn/config';
import { z } from 'zod';
import { CliError } from './errors.js';

export { s3OptionsFrom } from '@dynasyn/config';

const schema = z.object({
  ...httpEnv.shape,
  ...databaseEnv.shape,
  ...queueEnv.shape,
  ...localStorageEnv.shape,
  ...stageEnv.shape,
  ...webhookEnv.shape,
  ...logEnv.shape,
  ...shutdownEnv.shape,
  /** Worker processes to start: comma list, `all` (default) or `none` (API only). */
  WORKERS: z.string().optional(),
  /** CPU priority (nice, 0-19) of the worker processes: above 0, the API's requests win the CPU over a running stage. */
  WORKER_NICE: count(0, 10, 19),
  /** Where the default tiny bundle is created on first use. */
  XDG_CACHE_HOME: z.string().optional(),
});

export type ServiceEnv = z.output<typeof schema>;

/** Runs a config parse, reporting a bad environment as one CliError line. */
function cliParse<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof EnvError) throw new CliError(e.message);
    throw e;
  }
}

/** Parses `source` (process.env) for `dynasyn serve`; every problem named in one CliError (a lease shorter than the lock: both named). */
export function parseServiceEnv(source: NodeJS.ProcessEnv): ServiceEnv {
  return cliParse(() => checkStageLease(parseEnvironment(schema, source)));
}

/** Only DATABASE_URL (db migrate, tenants create). */
export function databaseUrlFrom(source: NodeJS.ProcessEnv): string {
  return cliParse(() => parseEnvironment(databaseEnv, source)).DATABASE_URL;
}

/** Cache directory of generated and downloaded bundles ($XDG_CACHE_HOME/dynasyn, else ~/.cache/dynasyn). */
export function cacheDirOf(env: Pick<ServiceEnv, 'XDG_CACHE_HOME'>): string {
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'dynasyn');
}
