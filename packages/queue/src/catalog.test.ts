import { expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { catalogs, queueNames } from './catalog.js';
import { checkEvictionPolicy, redact, redisOptions } from './connection.js';
import { personalizationStages } from './flow.js';
import { jobOptions, parsePayload } from './queues.js';

test('every queue has its jobs, named domain.verb, with a retry policy', () => {
  expect(queueNames).toEqual(['augment', 'gsa', 'train', 'sample', 'webhooks']);
  const jobs = Object.fromEntries(queueNames.map((q) => [q, Object.keys(catalogs[q].jobs)]));
  expect(jobs).toEqual({
    augment: ['personalization.augment'],
    gsa: ['personalization.gsa'],
    train: ['personalization.train'],
    sample: ['personalization.sample', 'samples.generate'],
    webhooks: ['webhook.deliver', 'webhook.sweep'],
  });
  for (const q of queueNames) {
    expect(catalogs[q].queue).toBe(q);
    for (const [name, def] of Object.entries(catalogs[q].jobs)) {
      expect(name).toMatch(/^[a-z]+\.[a-z]+$/);
      expect(def.retry.attempts).toBeGreaterThanOrEqual(2);
    }
  }
  expect(personalizationStages.map((s) => s.queue)).toEqual(['augment', 'gsa', 'train', 'sample']);
});

test('payloads carry ids and a version; bytes, unknown fields and unsafe ids are refused with the culprit named', () => {
  expect(parsePayload('train', 'personalization.train', { personalizationId: 'p1', tenantId: 't1' })).toEqual({
    v: 1,
    personalizationId: 'p1',
    tenantId: 't1',
  });
  expect(() => parsePayload('train', 'personalization.train', { personalizationId: 'p1', tenantId: 't1', image: 'AAAA' })).toThrow(
    /invalid payload for train\/personalization\.train: .*image/,
  );
  expect(() => parsePayload('train', 'personalization.train', { v: 2, personalizationId: 'p1', tenantId: 't1' })).toThrow(/v:/);
  expect(() => parsePayload('train', 'personalization.train', { personalizationId: 'a:b', tenantId: 't1' })).toThrow(/personalizationId/);
  expect(() => parsePayload('sample', 'samples.generate', { personalizationId: 'p', tenantId: 't', requestId: 'r', sampleIds: [] })).toThrow(/sampleIds/);
  expect(() => parsePayload('train', 'personalization.nope', {})).toThrow(/unknown job "personalization.nope" on queue "train"/);
});

test('job ids are deterministic per unit of work, so a second enqueue is a no-op', () => {
  const payload = parsePayload('gsa', 'personalization.gsa', { personalizationId: 'p1', tenantId: 't1' });
  expect(jobOptions('gsa', 'personalization.gsa', payload)).toEqual({
    jobId: 'personalization.gsa-p1',
    attempts: 3,
    backoff: { type: 'exponential', delay: 30_000 },
  });
  const samples = parsePayload('sample', 'samples.generate', { personalizationId: 'p', tenantId: 't', requestId: 'r9', sampleIds: ['s'] });
  expect(jobOptions('sample', 'samples.generate', samples).jobId).toBe('samples.generate-r9');
  // a request the reconciler took over carries its new epoch (the fencing token) in its payload and its id
  const taken = parsePayload('sample', 'samples.generate', { personalizationId: 'p', tenantId: 't', requestId: 'r9', sampleIds: ['s'], epoch: 2 });
  expect(jobOptions('sample', 'samples.generate', taken).jobId).toBe('samples.generate-r9-r2');
  expect(() => parsePayload('train', 'personalization.train', { personalizationId: 'p1', tenantId: 't1', epoch: -1 })).toThrow(/epoch/);
  const delivery = parsePayload('webhooks', 'webhook.deliver', { deliveryId: 'd1' });
  expect(jobOptions('webhooks', 'webhook.deliver', delivery)).toMatchObject({ jobId: 'webhook.deliver-d1', attempts: 8 });
});

test('the handler map and enqueue are checked at compile time (see worker.typetest.ts)', async () => {
  const pkg = fileURLToPath(new URL('..', import.meta.url));
  const tsc = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url));
  await expect(promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.typetest.json'], { cwd: pkg })).resolves.toBeDefined();
}, 60_000);

test('Redis URLs become BullMQ-ready options per role; passwords never reach messages', () => {
  expect(redisOptions('redis://u:s3cret@cache:6380/2', 'worker')).toEqual({
    host: 'cache',
    port: 6380,
    db: 2,
    username: 'u',
    password: 's3cret',
    maxRetriesPerRequest: null,
  });
  expect(redisOptions('rediss://cache', 'producer')).toMatchObject({ port: 6379, tls: {}, maxRetriesPerRequest: 2 });
  expect(() => redisOptions('http://cache', 'worker')).toThrow(/protocol must be redis/);
  expect(() => redisOptions('redis://u:s3cret@cache:6380/x', 'worker')).toThrow(/redis:\/\/u:\*\*\*@cache:6380\/x/);
  expect(redact('redis://:pw@h:1')).toBe('redis://:***@h:1');
});

test('an eviction policy other than noeviction is warned about clearly', async () => {
  const warnings: string[] = [];
  const logger = { info() {}, error() {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
  const client = (policy: string) => ({ config: async () => ['maxmemory-policy', policy], info: async () => '' }) as never;
  expect(await checkEvictionPolicy(client('noeviction'), logger)).toBe('noeviction');
  expect(warnings).toEqual([]);
  expect(await checkEvictionPolicy(client('allkeys-lru'), logger)).toBe('allkeys-lru');
  expect(warnings[0]).toMatch(/maxmemory-policy is "allkeys-lru", not "noeviction".*jobs are lost/);
  // CONFIG disabled (managed Redis): INFO is read instead.
  const managed = {
    config: async () => {
      throw new Error('unknown command');
    },
    info: async () => '# Memory\r\nmaxmemory_policy:volatile-lru\r\n',
  } as never;
  expect(await checkEvictionPolicy(managed, logger)).toBe('volatile-lru');
});
