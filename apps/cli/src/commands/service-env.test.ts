/** The environment contract of `dynasyn serve`: defaults, clear refusals, the WORKERS selection. */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseWorkerEnv } from '../../../../packages/stages/src/worker-env.js';
import { parseEnv as parseApiEnv } from '../../../api/src/env.js';
import { databaseUrlFrom, parseServiceEnv } from './service-env.js';
import { selectedWorkers } from './serve-workers.js';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x' };

test('defaults: port 3000, local Redis, storage in ./.dynasyn/storage, private webhooks refused, tiny bundle', () => {
  const env = parseServiceEnv(base);
  expect(env.PORT).toBe(3000);
  expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
  expect(env.STORAGE_URL).toBe(pathToFileURL(path.resolve('.dynasyn/storage')).href);
  expect(env.WEBHOOK_ALLOW_PRIVATE).toBe(false);
  expect(env.BACKBONE).toBeUndefined();
});

test('explicit values are kept; empty strings count as unset', () => {
  const env = parseServiceEnv({ ...base, PORT: '8080', STORAGE_URL: 's3://b/p', WEBHOOK_ALLOW_PRIVATE: 'true', BACKBONE: '' });
  expect([env.PORT, env.STORAGE_URL, env.WEBHOOK_ALLOW_PRIVATE, env.BACKBONE]).toEqual([8080, 's3://b/p', true, undefined]);
});

test('a bad environment is refused naming every culprit', () => {
  expect(() => parseServiceEnv({ PORT: 'eighty' })).toThrow(/DATABASE_URL.*PORT|PORT.*DATABASE_URL/);
  expect(() => parseServiceEnv({ ...base, WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(/WEBHOOK_ALLOW_PRIVATE/);
  expect(() => parseServiceEnv({ ...base, DEVICE: 'tpu', THREADS: '0' })).toThrow(/DEVICE.*THREADS/);
  expect(() => databaseUrlFrom({ DATABASE_URL: 'mysql://x' })).toThrow(/^invalid environment: DATABASE_URL: must be postgres:/);
  expect(() => parseServiceEnv({ ...base, STAGE_LOCK_SECONDS: '120', STAGE_LEASE_SECONDS: '60' })).toThrow(
    /^invalid environment: STAGE_LEASE_SECONDS: 60 s is shorter than STAGE_LOCK_SECONDS \(120 s\)/,
  );
});

test('the same settings and defaults as the worker apps and the API it runs (one @dynasyn/config)', () => {
  for (const extra of [{}, { STAGE_LOCK_SECONDS: '10', STAGE_LEASE_SECONDS: '120' }]) {
    const env = parseServiceEnv({ ...base, DEVICE: 'cuda', THREADS: '4', LOG_LEVEL: 'trace', ...extra });
    // serve's default local store is handed to the API and the workers (serve.ts, serve-workers.ts)
    const worker = parseWorkerEnv({ ...base, STORAGE_URL: env.STORAGE_URL, DEVICE: 'cuda', THREADS: '4', LOG_LEVEL: 'trace', ...extra });
    const api = parseApiEnv({ ...base, STORAGE_URL: env.STORAGE_URL, LOG_LEVEL: 'trace', ...extra });
    for (const k of [
      'REDIS_URL',
      'QUEUE_PREFIX',
      'STORAGE_URL',
      'LOG_LEVEL',
      'SHUTDOWN_GRACE_SECONDS',
      'STAGE_LOCK_SECONDS',
      'STAGE_LEASE_SECONDS',
      'DEVICE',
      'THREADS',
    ] as const) {
      expect([k, env[k]]).toEqual([k, worker[k]]);
    }
    for (const k of [
      'PORT',
      'HOST',
      'REDIS_URL',
      'QUEUE_PREFIX',
      'STORAGE_URL',
      'LOG_LEVEL',
      'SHUTDOWN_GRACE_SECONDS',
      'WEBHOOK_ALLOW_PRIVATE',
      'STAGE_LOCK_SECONDS',
      'STAGE_LEASE_SECONDS',
    ] as const) {
      expect([k, env[k]]).toEqual([k, api[k]]);
    }
  }
});

test('WORKERS: all by default, none, or a list of known names', () => {
  expect(selectedWorkers(undefined)).toEqual(['augment', 'gsa', 'train', 'sample', 'webhooks']);
  expect(selectedWorkers('none')).toEqual([]);
  expect(selectedWorkers('train, sample,train')).toEqual(['train', 'sample']);
  expect(() => selectedWorkers('train,gpu')).toThrow(/unknown worker "gpu"/);
});
