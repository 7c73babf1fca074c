/**
 * Standard Webhooks (https://www.standardwebhooks.com): the signature is
 * `v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">` keyed with the base64-decoded part of the
 * secret after `whsec_`. Receivers check it with any Standard Webhooks library, or with `verifyWebhook`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { WebhookError } from './errors.js';

const PREFIX = 'whsec_';

/** A new signing secret: `whsec_` + base64 of 24 random bytes (the spec asks for 24 to 64). */
export function generateWebhookSecret(bytes = 24): string {
  if (!(bytes >= 24 && bytes <= 64)) throw new WebhookError('BAD_SECRET', `a webhook secret takes 24 to 64 random bytes, not ${bytes}`);
  return PREFIX + randomBytes(bytes).toString('base64');
}

function secretKey(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new WebhookError('BAD_SECRET', 'a webhook secret starts with "whsec_"');
  const key = Buffer.from(secret.slice(PREFIX.length), 'base64');
  if (key.length < 16) throw new WebhookError('BAD_SECRET', 'the webhook secret decodes to fewer than 16 bytes');
  return key;
}

/** `v1,<base64>` for one message. `timestamp` is in whole seconds since the epoch. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a delivery. */
export function webhookHeaders(secret: string, id: string, timestamp: number, body: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signWebhook(secret, id, timestamp, body) };
}

export interface VerifyOptions {
  /** Largest accepted distance between the timestamp and now, in seconds (replay window). Default 300. */
  toleranceSeconds?: number;
  /** Now, in ms (tests). Default Date.now(). */
  now?: number;
}

/**
 * Checks a received delivery: headers present, timestamp within the tolerance, and one of the
 * space-separated `v1,` signatures matching. Returns the parsed body; throws WebhookError otherwise.
 */
export function verifyWebhook(secret: string, headers: Record<string, string | string[] | undefined>, body: string, o: VerifyOptions = {}): unknown {
  const header = (name: string): string => {
    const v = headers[name] ?? headers[name.toLowerCase()];
    const s = Array.isArray(v) ? v[0] : v;
    if (!s) throw new WebhookError('BAD_SIGNATURE', `missing header ${name}`);
    return s;
  };
  const id = header('webhook-id');
  const ts = Number(header('webhook-timestamp'));
  const given = header('webhook-signature');
  if (!Number.isInteger(ts)) throw new WebhookError('BAD_SIGNATURE', 'webhook-timestamp is not an integer');
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  if (Math.abs(now - ts) > (o.toleranceSeconds ?? 300)) throw new WebhookError('BAD_SIGNATURE', 'webhook-timestamp is outside the tolerance');
  const expected = Buffer.from(signWebhook(secret, id, ts, body));
  const ok = given.split(' ').some((sig) => {
    const b = Buffer.from(sig);
    return b.length === expected.length && timingSafeEqual(b, expected);
  });
  if (!ok) throw new WebhookError('BAD_SIGNATURE', 'no webhook-signature matches');
  return JSON.parse(body) as unknown;
}
