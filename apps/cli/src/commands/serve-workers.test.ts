/**
 * `dynasyn serve` runs the deployment's workers with the deployment's settings: given the same variables, its
 * workers get the queue settings (lock, stall and close times, device, concurrency) and the stage ports' device
 * and threads that a worker app gets, with serve's own resolved values (storage, backbone) in place.
 */
import { parseWorkerEnv, queueWorkerOptions, stageDepsOf, stageLeaseMs } from '@dynasyn/stages';
import { parseServiceEnv } from './service-env.js';
import { workerEnvironment } from './serve-workers.js';

const source = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x',
  REDIS_URL: 'redis://127.0.0.1:6379',
  STORAGE_URL: 'file:///tmp/dynasyn-serve-test',
  DEVICE: 'cuda',
  THREADS: '3',
  CONCURRENCY: '2',
  STAGE_LOCK_SECONDS: '16',
  SHUTDOWN_GRACE_SECONDS: '20',
  LOG_LEVEL: 'trace',
};
const logger = { info() {}, warn() {}, error() {} };
const settings = (o: ReturnType<typeof queueWorkerOptions>) => {
  const { logger: _l, connection: _c, ...rest } = o;
  return rest;
};

test("the queue settings of serve's workers are those of a worker app given the same variables", () => {
  const app = parseWorkerEnv({ ...source, LOG_LEVEL: 'debug', BACKBONE: '/bundle' });
  const served = parseWorkerEnv(workerEnvironment(source, parseServiceEnv(source), '/bundle', '/tmp/scratch'));
  expect(settings(queueWorkerOptions(served, logger))).toEqual(settings(queueWorkerOptions(app, logger)));
  expect(settings(queueWorkerOptions(served, logger))).toMatchObject({
    device: 'cuda',
    concurrency: 2,
    lockDuration: 16_000,
    closeTimeoutMs: 10_000,
    abortGraceMs: 8_000,
  });
  expect([served.BACKBONE, served.WORK_DIR, served.STORAGE_URL]).toEqual(['/bundle', '/tmp/scratch', 'file:///tmp/dynasyn-serve-test']);
});

test("serve's workers get the deployment's stage lease: STAGE_LEASE_SECONDS, else STAGE_LOCK_SECONDS", () => {
  const leased = { ...source, STAGE_LEASE_SECONDS: '900' };
  const served = parseWorkerEnv(workerEnvironment(leased, parseServiceEnv(leased), '/bundle'));
  expect([served.STAGE_LOCK_SECONDS, stageLeaseMs(served)]).toEqual([16, 900_000]);
  expect(stageLeaseMs(served)).toBe(stageLeaseMs(parseWorkerEnv({ ...leased, BACKBONE: '/bundle' })));
  // unset stays unset: the lease is the lock's 16 s, below the 30 s a lease set may be
  const unset = parseWorkerEnv(workerEnvironment(source, parseServiceEnv(source), '/bundle'));
  expect([unset.STAGE_LEASE_SECONDS, stageLeaseMs(unset)]).toEqual([undefined, 16_000]);
});

test("serve's stage ports run on the configured device with the configured threads", () => {
  const served = parseWorkerEnv(workerEnvironment(source, parseServiceEnv(source), '/bundle'));
  const deps = stageDepsOf(served, { db: {} as never, set: {} as never, backbone: '/bundle', logger });
  expect([deps.executionProviders, deps.intraOpNumThreads, deps.backbone]).toEqual([['cuda', 'cpu'], 3, '/bundle']);
});
