import { describe, expect, it } from '@jest/globals';
import { parseEnv } from './env.js';
import { configFromEnv } from './services.js';

describe('parseEnv', () => {
  it('applies the documented defaults', () => {
    const env = parseEnv({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/dynasyn', STORAGE_URL: 'file:///srv/blobs' });
    expect(env).toMatchObject({
      PORT: 3000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      WEBHOOK_ALLOW_PRIVATE: false,
      MAX_UPLOAD_BYTES: 20 * 1024 * 1024,
      MAX_IMAGE_PIXELS: 40_000_000,
      DOCS: true,
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_SECONDS: 20,
    });
    expect(env.OPS_TOKEN).toBeUndefined();
    expect(configFromEnv(env).opsToken).toBeUndefined();
  });

  it('reads booleans and numbers from strings', () => {
    const env = parseEnv({ DATABASE_URL: 'postgres://x/y', STORAGE_URL: 's3://bucket/p', WEBHOOK_ALLOW_PRIVATE: 'true', PORT: '8080', RATE_LIMIT_MAX: '5' });
    expect(configFromEnv(env)).toMatchObject({ webhookAllowPrivate: true, rateLimitMax: 5 });
    expect(env.PORT).toBe(8080);
  });

  it('takes the stage lease from STAGE_LEASE_SECONDS, else STAGE_LOCK_SECONDS, and refuses one shorter than the lock', () => {
    const base = { DATABASE_URL: 'postgres://x/y', STORAGE_URL: 's3://bucket/p' };
    expect(configFromEnv(parseEnv(base)).stageLeaseSeconds).toBe(600);
    expect(configFromEnv(parseEnv({ ...base, STAGE_LOCK_SECONDS: '90' })).stageLeaseSeconds).toBe(90);
    expect(configFromEnv(parseEnv({ ...base, STAGE_LOCK_SECONDS: '20', STAGE_LEASE_SECONDS: '1800' })).stageLeaseSeconds).toBe(1800);
    expect(() => parseEnv({ ...base, STAGE_LEASE_SECONDS: '300' })).toThrow(/STAGE_LEASE_SECONDS: 300 s is shorter than STAGE_LOCK_SECONDS \(600 s\)/);
  });

  it('names every invalid variable', () => {
    let message = '';
    try {
      parseEnv({ PORT: 'abc', OPS_TOKEN: 'short' });
    } catch (e) {
      message = (e as Error).message;
    }
    // STORAGE_URL has no default here: a deployed API must not keep uploads on its own disk
    for (const name of ['DATABASE_URL', 'STORAGE_URL', 'PORT', 'OPS_TOKEN']) expect(message).toContain(`${name}:`);
  });
});
