/**
 * Issue 12, sections 5 and 6 through the real app (Postgres, Redis, app.inject): secrets stay out of request
 * logs and cookies, /metrics needs its token, unauthenticated floods are rate limited by address, the webhook
 * allow-list is read from the environment safely, and /ops and /metrics show what Postgres knows of stuck work.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '@dynasyn/logger';
import { DEFAULT_CONFIG } from './config.js';
import { parseEnv } from './env.js';
import { redactUrl } from './plugins/log-redaction.js';
import { OPS_SESSION_SECONDS, opsSessions } from './plugins/ops.js';
import { addressKey } from './plugins/rate-limits.js';
import { buildServer } from './server.js';
import { configFromEnv } from './services.js';
import { createTenant, METRICS_TOKEN, OPS_TOKEN, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
let alice: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  h = await startHarness();
  alice = await createTenant(h.db, 'alice');
});
afterAll(async () => h?.close());

describe('secrets in request logs and the ops cookie', () => {
  it('redacts secret-bearing query parameters and keeps the rest', () => {
    expect(redactUrl('/ops?token=abc')).toBe('/ops?token=[REDACTED]');
    expect(redactUrl('/x?a=1&api_key=k&X-Amz-Signature=s&Secret=z&b=2')).toBe('/x?a=1&api_key=[REDACTED]&X-Amz-Signature=[REDACTED]&Secret=[REDACTED]&b=2');
    expect(redactUrl('/v1/samples?personalization=p&prompt=a%20b')).toBe('/v1/samples?personalization=p&prompt=a%20b');
    expect(redactUrl('/ops')).toBe('/ops');
  });

  it('never writes the OPS_TOKEN into the request log, and trades it for a signed session cookie', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const server = buildServer({
      deps: h.deps,
      config: { ...DEFAULT_CONFIG, opsToken: OPS_TOKEN },
      logger: createLogger({ name: 'api', level: 'info', destination: sink }),
    });
    try {
      const login = await server.inject(`/ops?token=${OPS_TOKEN}&view=1`);
      expect(login.statusCode).toBe(303);
      const log = lines.join('');
      expect(log).toContain('"url":"/ops?token=[REDACTED]&view=1"');
      expect(log).not.toContain(OPS_TOKEN);

      const setCookie = String(login.headers['set-cookie']);
      expect(setCookie).not.toContain(OPS_TOKEN);
      expect(setCookie).not.toContain(encodeURIComponent(OPS_TOKEN));
      expect(setCookie).toMatch(/; HttpOnly/);
      expect(setCookie).toMatch(/; SameSite=Strict/);
      expect(setCookie).toMatch(new RegExp(`; Max-Age=${OPS_SESSION_SECONDS}`));
      expect(setCookie).not.toMatch(/Secure/); // plain http, no proxy trusted
      const cookie = setCookie.split(';')[0]!;
      expect((await server.inject({ url: '/ops/health.json', headers: { cookie } })).statusCode).toBe(200);

      // the old cookie (the raw token) and a tampered session no longer open /ops
      expect((await server.inject({ url: '/ops/health.json', headers: { cookie: `dynasyn_ops=${OPS_TOKEN}` } })).statusCode).toBe(401);
      const [name, value] = cookie.split('=') as [string, string];
      const tampered = value.replace(/^v1\.(\d+)/, (_m, exp: string) => `v1.${Number(exp) + 86_400}`);
      expect(tampered).not.toBe(value);
      expect((await server.inject({ url: '/ops/health.json', headers: { cookie: `${name}=${tampered}` } })).statusCode).toBe(401);
      // a session of another OPS_TOKEN (rotated) is refused
      const other = opsSessions('another-ops-token-0123456789').issue();
      expect((await server.inject({ url: '/ops/health.json', headers: { cookie: `dynasyn_ops=${other}` } })).statusCode).toBe(401);
    } finally {
      await server.close();
    }
  });

  it('marks the cookie Secure when the client came over TLS through a trusted proxy', async () => {
    const server = buildServer({ deps: h.deps, config: { ...DEFAULT_CONFIG, opsToken: OPS_TOKEN }, trustProxy: true });
    const untrusted = buildServer({ deps: h.deps, config: { ...DEFAULT_CONFIG, opsToken: OPS_TOKEN } });
    try {
      const viaTls = await server.inject({ url: `/ops?token=${OPS_TOKEN}`, headers: { 'x-forwarded-proto': 'https' } });
      expect(String(viaTls.headers['set-cookie'])).toMatch(/; Secure/);
      const spoofed = await untrusted.inject({ url: `/ops?token=${OPS_TOKEN}`, headers: { 'x-forwarded-proto': 'https' } });
      expect(String(spoofed.headers['set-cookie'])).not.toMatch(/Secure/);
    } finally {
      await server.close();
      await untrusted.close();
    }
  });

  it('expires sessions', () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const sessions = opsSessions(OPS_TOKEN, () => now);
    const value = sessions.issue();
    expect(sessions.valid(value)).toBe(true);
    now += (OPS_SESSION_SECONDS - 1) * 1000;
    expect(sessions.valid(value)).toBe(true);
    now += 2000;
    expect(sessions.valid(value)).toBe(false);
    expect(sessions.valid(null)).toBe(false);
    expect(sessions.valid('v1.1.x.y')).toBe(false);
  });
});

describe('/metrics', () => {
  it('answers only its bearer token, and is not served without one configured', async () => {
    expect((await h.server.inject('/metrics')).statusCode).toBe(401);
    expect((await h.server.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong-metrics-token-0123' } })).statusCode).toBe(401);
    expect((await h.server.inject({ url: '/metrics', headers: { authorization: `Bearer ${OPS_TOKEN}` } })).statusCode).toBe(401);
    expect((await h.server.inject({ url: '/metrics', headers: alice.auth })).statusCode).toBe(401);
    const ok = await h.server.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('dynasyn_queue_jobs');
    const closed = h.serverWith({ metricsToken: undefined });
    expect((await closed.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode).toBe(404);
  });
});

describe('rate limits by client address', () => {
  it('limits requests with no key or a wrong key per address, before authentication, with 429 and Retry-After', async () => {
    const limited = h.serverWith({ rateLimitAddressMax: 3, rateLimitWindowMs: 60_000 });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const headers: Record<string, string> = i % 2 ? { authorization: `Bearer dsk_wrong_${i}` } : {};
      codes.push((await limited.inject({ url: '/v1/webhooks/deliveries', headers, remoteAddress: '203.0.113.7' })).statusCode);
    }
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    const refused = await limited.inject({ url: '/v1/webhooks/deliveries', remoteAddress: '203.0.113.7' });
    expect(refused.json()).toMatchObject({
      code: 'RATE_LIMITED',
      message: expect.stringMatching(/3 requests per 60 seconds per client address.*retry in \d+ seconds/),
    });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // a valid key from the flooding address is refused as well (the address is over its limit) ...
    expect((await limited.inject({ url: '/v1/webhooks/deliveries', headers: alice.auth, remoteAddress: '203.0.113.7' })).statusCode).toBe(429);
    // ... while another address is not affected
    expect((await limited.inject({ url: '/v1/webhooks/deliveries', headers: alice.auth, remoteAddress: '198.51.100.8' })).statusCode).toBe(200);
  });

  it('names the window, not the time left, in the per-key 429', async () => {
    const limited = h.serverWith({ rateLimitMax: 1, rateLimitWindowMs: 600_000 });
    await limited.inject({ url: '/v1/webhooks/deliveries', headers: alice.auth });
    const res = await limited.inject({ url: '/v1/webhooks/deliveries', headers: alice.auth });
    expect(res.statusCode).toBe(429);
    expect(res.json()).toMatchObject({
      message: expect.stringMatching(/^rate limit of 1 requests per 600 seconds per API key exceeded; retry in \d+ seconds$/),
    });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('counts an IPv6 client by its /64', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
  });
});

describe('webhook allow-list from the environment', () => {
  const base = { DATABASE_URL: 'postgres://x/y', STORAGE_URL: 's3://bucket/p' };
  it('reads WEBHOOK_ALLOW_CIDRS, maps the deprecated WEBHOOK_ALLOW_PRIVATE=true to loopback, and refuses lists that name metadata or multicast', () => {
    expect(configFromEnv(parseEnv(base))).toMatchObject({ webhookAllowCidrs: [], webhookAllowPrivate: false });
    expect(configFromEnv(parseEnv({ ...base, WEBHOOK_ALLOW_CIDRS: '10.0.0.0/8' }))).toMatchObject({
      webhookAllowCidrs: ['10.0.0.0/8'],
      webhookAllowPrivate: false,
    });
    expect(configFromEnv(parseEnv({ ...base, WEBHOOK_ALLOW_PRIVATE: 'true' }))).toMatchObject({
      webhookAllowCidrs: ['127.0.0.0/8', '::1/128'],
      webhookAllowPrivate: true,
    });
    for (const bad of ['169.254.169.254', '169.254.0.0/16', 'fe80::/10', '224.0.0.0/4', '255.255.255.255/32'])
      expect(() => configFromEnv(parseEnv({ ...base, WEBHOOK_ALLOW_CIDRS: `127.0.0.0/8,${bad}` }))).toThrow(/WEBHOOK_ALLOW_CIDRS.*never reach/);
  });
});

describe('stuck work, from Postgres', () => {
  it('shows personalizations by status, work quiet past its lease, recoveries and failed deliveries on /metrics and /ops', async () => {
    const tenant = await h.db.tenants.create('ops-work');
    const make = async (status: string, quietSeconds: number) => {
      const r = await h.db.personalizations.create({
        tenantId: tenant.tenant.id,
        subjects: [{ classWord: 'dog', maskKey: 'm.png' }],
        imageKey: 'i.png',
        options: {},
      });
      if (!r.created) throw new Error('expected a row');
      await h.db.prisma.$executeRaw`UPDATE "Personalization" SET status = ${status}::"PersonalizationStatus",
        "updatedAt" = now() - make_interval(secs => ${quietSeconds}::float8) WHERE id = ${r.personalization.id}`;
      return r.personalization.id;
    };
    await make('training', 10); // working
    const stuck = await make('training', 3600); // no write for an hour: its worker or its job is gone
    await make('sampling', 4000);
    await make('succeeded', 9000);
    const d = await h.db.webhooks.createDelivery({
      tenantId: tenant.tenant.id,
      eventType: 'personalization.failed',
      eventId: 'evt-stuck-1',
      url: 'https://x.example/',
      payload: {},
    });
    await h.db.prisma.webhookDelivery.update({ where: { id: d.id }, data: { status: 'failed' } });
    await h.db.prisma.$executeRaw`UPDATE "Personalization" SET recoveries = 2 WHERE id = ${stuck}`;

    const server = h.serverWith({ stageLeaseSeconds: 600 });
    const metrics = (await server.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).body;
    expect(metrics).toMatch(/^dynasyn_work_up 1$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations\{status="training"\} 2$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations\{status="succeeded"\} 1$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations_stale\{status="training"\} 1$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations_stale\{status="sampling"\} 1$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations_stale\{status="augmenting"\} 0$/m);
    expect(metrics).toMatch(/^dynasyn_personalizations_stale_oldest_seconds\{status="training"\} 36\d\d/m);
    expect(metrics).toMatch(/^dynasyn_recoveries\{kind="personalization"\} 2$/m);
    expect(metrics).toMatch(/^dynasyn_webhook_deliveries\{status="failed"\} 1$/m);

    const page = await server.inject({ url: '/ops', headers: { authorization: `Bearer ${OPS_TOKEN}` } });
    expect(page.body).toContain('Work (Postgres)');
    expect(page.body).toMatch(/<td>training<\/td><td class="bad">1<\/td>/);
    const json = (await server.inject({ url: '/ops/health.json', headers: { authorization: `Bearer ${OPS_TOKEN}` } })).json() as {
      work: { stale: { training: { count: number } }; webhookDeliveries: { failed: number }; recoveries: { personalizations: number } };
    };
    expect(json.work).toMatchObject({ stale: { training: { count: 1 } }, webhookDeliveries: { failed: 1 }, recoveries: { personalizations: 2 } });

    // a lease longer than the quiet hour: nothing is stuck
    const patient = h.serverWith({ stageLeaseSeconds: 7200 });
    const calm = (await patient.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).body;
    expect(calm).toMatch(/^dynasyn_personalizations_stale\{status="training"\} 0$/m);
  });

  it('still serves /metrics, with dynasyn_work_up 0, when Postgres does not answer', async () => {
    const server = h.serverWith({});
    const real = h.deps.db.ops.workSnapshot;
    h.deps.db.ops.workSnapshot = async () => Promise.reject(new Error('ECONNREFUSED'));
    try {
      const res = await server.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/^dynasyn_work_up 0$/m);
      expect(res.body).toContain('http_request_duration_seconds');
    } finally {
      h.deps.db.ops.workSnapshot = real;
    }
  });
});
