/** The shared environment contract: one default per setting, the same refusals in every app that composes a piece. */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import {
  EnvError,
  checkStageLease,
  databaseEnv,
  httpEnv,
  localStorageEnv,
  localStorageUrl,
  logEnv,
  parseEnvironment,
  queueEnv,
  s3OptionsFrom,
  shutdownEnv,
  stageEnv,
  stageLeaseSeconds,
  storageEnv,
  webhookAllowCidrs,
  webhookEnv,
} from './index.js';

const all = z.object({
  ...databaseEnv.shape,
  ...queueEnv.shape,
  ...localStorageEnv.shape,
  ...logEnv.shape,
  ...shutdownEnv.shape,
  ...stageEnv.shape,
  ...httpEnv.shape,
  ...webhookEnv.shape,
});
const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x' };

test('the defaults, each chosen once (README.md says why)', () => {
  expect(parseEnvironment(all, base)).toEqual({
    ...base,
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: 'dynasyn',
    STORAGE_URL: pathToFileURL(path.resolve('.dynasyn/storage')).href,
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_SECONDS: 20,
    DEVICE: 'cpu',
    STAGE_LOCK_SECONDS: 600,
    PORT: 3000,
    HOST: '0.0.0.0',
    WEBHOOK_ALLOW_CIDRS: [],
    WEBHOOK_ALLOW_PRIVATE: false,
  });
  expect(localStorageUrl('/srv/app')).toBe('file:///srv/app/.dynasyn/storage');
});

test('STORAGE_URL is required except on a single machine (localStorageEnv)', () => {
  expect(() => parseEnvironment(storageEnv, {})).toThrow(/STORAGE_URL/);
  expect(() => parseEnvironment(storageEnv, { STORAGE_URL: '' })).toThrow(/STORAGE_URL/);
  expect(parseEnvironment(storageEnv, { STORAGE_URL: 's3://bucket/p' }).STORAGE_URL).toBe('s3://bucket/p');
  expect(parseEnvironment(localStorageEnv, { STORAGE_URL: '' }).STORAGE_URL).toBe(localStorageUrl(process.cwd()));
});

test('empty strings count as unset; numbers and flags are read from strings', () => {
  const env = parseEnvironment(all, {
    ...base,
    STORAGE_URL: '',
    S3_ENDPOINT: '',
    BACKBONE: '',
    CLIP_MODEL: '',
    JUDGE_MODEL: '',
    THREADS: '',
    STAGE_LOCK_SECONDS: '8',
    SHUTDOWN_GRACE_SECONDS: '2.5',
    PORT: '8080',
    WEBHOOK_ALLOW_PRIVATE: '1',
    LOG_LEVEL: 'trace',
  });
  expect(env).toMatchObject({ STAGE_LOCK_SECONDS: 8, SHUTDOWN_GRACE_SECONDS: 2.5, PORT: 8080, WEBHOOK_ALLOW_PRIVATE: true, LOG_LEVEL: 'trace' });
  expect([env.S3_ENDPOINT, env.BACKBONE, env.CLIP_MODEL, env.JUDGE_MODEL, env.THREADS]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  expect(env.STORAGE_URL).toMatch(/^file:\/\/.*\.dynasyn\/storage$/);
  expect(parseEnvironment(all, { ...base, THREADS: '4' }).THREADS).toBe(4);
});

test('every bad variable is named in one EnvError', () => {
  let error: unknown;
  try {
    parseEnvironment(all, {
      DATABASE_URL: 'mysql://x',
      REDIS_URL: 'http://r',
      QUEUE_PREFIX: 'a:b',
      STORAGE_URL: 'ftp://x',
      LOG_LEVEL: 'verbose',
      SHUTDOWN_GRACE_SECONDS: '0',
      STAGE_LOCK_SECONDS: '1',
      STAGE_LEASE_SECONDS: '29',
      DEVICE: 'tpu',
      THREADS: '0',
      WEBHOOK_ALLOW_PRIVATE: 'yes',
      WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8,10.0.0.0/33',
    });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EnvError);
  const named = (error as EnvError).problems.map((p) => p.split(':')[0]);
  expect(named.sort()).toEqual([
    'DATABASE_URL',
    'DEVICE',
    'LOG_LEVEL',
    'QUEUE_PREFIX',
    'REDIS_URL',
    'SHUTDOWN_GRACE_SECONDS',
    'STAGE_LEASE_SECONDS',
    'STAGE_LOCK_SECONDS',
    'STORAGE_URL',
    'THREADS',
    'WEBHOOK_ALLOW_CIDRS.1',
    'WEBHOOK_ALLOW_PRIVATE',
  ]);
  expect((error as Error).message).toMatch(/^invalid environment: .*DATABASE_URL: must be postgres:\/\//);
});

test('STAGE_LEASE_SECONDS: unset, the lease is STAGE_LOCK_SECONDS (as before the split); 30 s to a day; never shorter than the lock', () => {
  const read = (source: Record<string, string>) => checkStageLease(parseEnvironment(stageEnv, source));
  // unset (or empty): the lock's value, whatever the lock is, so deployments that set only the lock keep their lease
  expect(parseEnvironment(stageEnv, {}).STAGE_LEASE_SECONDS).toBeUndefined();
  expect(stageLeaseSeconds(read({}))).toBe(600);
  expect(stageLeaseSeconds(read({ STAGE_LEASE_SECONDS: '' }))).toBe(600);
  expect(stageLeaseSeconds(read({ STAGE_LOCK_SECONDS: '8' }))).toBe(8);
  // a short job lock with a long lease, and the bounds
  expect(read({ STAGE_LOCK_SECONDS: '5', STAGE_LEASE_SECONDS: '600' })).toMatchObject({ STAGE_LOCK_SECONDS: 5, STAGE_LEASE_SECONDS: 600 });
  for (const ok of ['30', '86400']) expect(stageLeaseSeconds(read({ STAGE_LOCK_SECONDS: '20', STAGE_LEASE_SECONDS: ok }))).toBe(Number(ok));
  for (const bad of ['29', '86401', '45.5', 'ten'])
    expect(() => parseEnvironment(stageEnv, { STAGE_LEASE_SECONDS: bad })).toThrow(/^invalid environment: STAGE_LEASE_SECONDS: /);
  // equal is fine; shorter than the lock is refused, naming both variables
  expect(stageLeaseSeconds(read({ STAGE_LOCK_SECONDS: '120', STAGE_LEASE_SECONDS: '120' }))).toBe(120);
  let error: unknown;
  try {
    read({ STAGE_LEASE_SECONDS: '300' }); // the lock's default is 600
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EnvError);
  expect((error as EnvError).problems).toHaveLength(1);
  expect((error as Error).message).toMatch(/^invalid environment: STAGE_LEASE_SECONDS: 300 s is shorter than STAGE_LOCK_SECONDS \(600 s\)/);
  expect(() => read({ STAGE_LOCK_SECONDS: '60', STAGE_LEASE_SECONDS: '59' })).toThrow(/STAGE_LEASE_SECONDS: 59 s is shorter than STAGE_LOCK_SECONDS \(60 s\)/);
});

test('WEBHOOK_ALLOW_CIDRS is a comma list of CIDRs; the deprecated WEBHOOK_ALLOW_PRIVATE=true reads as loopback, with a warning', () => {
  const read = (source: Record<string, string>) => webhookAllowCidrs(parseEnvironment(webhookEnv, source));
  expect(read({})).toEqual({ cidrs: [] });
  expect(read({ WEBHOOK_ALLOW_CIDRS: '' })).toEqual({ cidrs: [] });
  expect(read({ WEBHOOK_ALLOW_CIDRS: ' 10.0.0.0/8, fd00::/8 ,192.168.1.5' })).toEqual({ cidrs: ['10.0.0.0/8', 'fd00::/8', '192.168.1.5'] });
  const legacy = read({ WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_ALLOW_CIDRS: '10.0.0.0/8' });
  expect(legacy.cidrs).toEqual(['10.0.0.0/8', '127.0.0.0/8', '::1/128']);
  expect(legacy.deprecation).toMatch(/WEBHOOK_ALLOW_PRIVATE is deprecated.*WEBHOOK_ALLOW_CIDRS/);
  for (const bad of ['localhost', '10.0.0.0/8/1', '::1/129', '10.0.0.0/x'])
    expect(() => parseEnvironment(webhookEnv, { WEBHOOK_ALLOW_CIDRS: bad })).toThrow(/WEBHOOK_ALLOW_CIDRS.*not a CIDR/);
});

test('S3 options: endpoint and region when set; credentials only as a pair', () => {
  expect(s3OptionsFrom({})).toEqual({});
  expect(s3OptionsFrom({ S3_ENDPOINT: 'http://minio:9000', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' })).toEqual({
    endpoint: 'http://minio:9000',
    region: 'eu-west-1',
    accessKeyId: 'k',
    secretAccessKey: 's',
  });
  expect(s3OptionsFrom({ AWS_ACCESS_KEY_ID: 'k' })).toEqual({});
});
