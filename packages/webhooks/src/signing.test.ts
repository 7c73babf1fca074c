import { generateWebhookSecret, signWebhook, verifyWebhook, webhookHeaders } from './signing.js';

describe('Standard Webhooks signing', () => {
  it('matches the specification test vector', () => {
    // from the standard-webhooks reference libraries' tests
    const sig = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('verifies its own headers and rejects tampering, another secret, and stale timestamps', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ type: 'samples.completed', data: { id: 'p1', status: 'succeeded' } });
    const now = 1_700_000_000_000;
    const h = webhookHeaders(secret, 'msg_1', now / 1000, body);
    expect(verifyWebhook(secret, h, body, { now })).toEqual(JSON.parse(body));
    expect(() => verifyWebhook(secret, h, body.replace('p1', 'p2'), { now })).toThrow(/no webhook-signature matches/);
    expect(() => verifyWebhook(generateWebhookSecret(), h, body, { now })).toThrow(/no webhook-signature matches/);
    expect(() => verifyWebhook(secret, h, body, { now: now + 301_000 })).toThrow(/tolerance/);
    expect(() => verifyWebhook(secret, { ...h, 'webhook-id': 'msg_2' }, body, { now })).toThrow(/no webhook-signature/);
    // several signatures (secret rotation): one matching is enough
    const rotated = { ...h, 'webhook-signature': `v1,AAAA ${h['webhook-signature']}` };
    expect(verifyWebhook(secret, rotated, body, { now })).toBeTruthy();
  });

  it('refuses malformed secrets', () => {
    expect(() => signWebhook('nope', 'a', 1, '')).toThrow(/whsec_/);
    expect(() => generateWebhookSecret(8)).toThrow(/24 to 64/);
  });
});
