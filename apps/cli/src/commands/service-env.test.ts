/** The environment contract of `dynasyn serve`: defaults, clear refusals, the WORKERS selection. */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseServiceEnv } from './service-env.js';
import { selectedWorkers } from './serve-workers.js';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x' };

test('defaults: port 3000, local Redis, storage in ./.dynasyn/storage, private webhooks refused, tiny bundle', () => {
  const env = parseServiceEnv(base, '/srv/app');
  expect(env.PORT).toBe(3000);
  expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
  expect(env.STORAGE_URL).toBe(pathToFileURL(path.resolve('/srv/app', '.dynasyn/storage')).href);
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
});

test('WORKERS: all by default, none, or a list of known names', () => {
  expect(selectedWorkers(undefined)).toEqual(['augment', 'gsa', 'train', 'sample', 'webhooks']);
  expect(selectedWorkers('none')).toEqual([]);
  expect(selectedWorkers('train, sample,train')).toEqual(['train', 'sample']);
  expect(() => selectedWorkers('train,gpu')).toThrow(/unknown worker "gpu"/);
});
