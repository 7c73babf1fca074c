/** A sample worker's environment whose database and Redis nothing listens on: a refusal at start must come before any connection. */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseWorkerEnv } from '../worker-env.js';

export function unreachableWorkerEnv(root: string, extra: Record<string, string>): ReturnType<typeof parseWorkerEnv> {
  return parseWorkerEnv({
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
    REDIS_URL: 'redis://127.0.0.1:1',
    STORAGE_URL: pathToFileURL(join(root, 'storage')).href,
    CACHE_DIR: join(root, 'cache'),
    WORK_DIR: join(root, 'work'),
    LOG_LEVEL: 'silent',
    ...extra,
  });
}
