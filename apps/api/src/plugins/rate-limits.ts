/**
 * Rate limits of /v1, counted in Redis (in memory without one): per client address before authentication, so
 * floods of requests with no key or a wrong one are refused cheaply; then per API key (by its hash, so raw keys
 * never sit in Redis). Both answer 429 `RATE_LIMITED` with `retry-after`.
 */
import createError from '@fastify/error';
import rateLimit from '@fastify/rate-limit';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { bearer, hashApiKey } from './auth.js';

export interface RateLimitOptions {
  /** Requests per API key per window. */
  perKeyMax: number;
  /** Requests per client address per window, counted before authentication. */
  perAddressMax: number;
  windowMs: number;
  redis?: Redis;
  nameSpace: string;
}

/** The client's address as limited: IPv6 by its /64 (one host's whole allocation), IPv4 as is. */
export function addressKey(ip: string): string {
  if (isIP(ip) !== 6 || ip.startsWith('::ffff:')) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const full = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${full
    .slice(0, 4)
    .map((h) => parseInt(h, 16).toString(16))
    .join(':')}::/64`;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** 429 `RATE_LIMITED`; an Error (not a bare object), so every error handler on the way passes it on intact. */
export const RateLimited = createError('RATE_LIMITED', '%s', 429);

/** The 429: the limit over its window, and when to retry (not the time left posing as the window). */
export function rateLimited(max: number, windowMs: number, retryAfterMs: number, per: 'API key' | 'client address'): Error {
  return new RateLimited(`rate limit of ${max} requests per ${seconds(windowMs)} seconds per ${per} exceeded; retry in ${seconds(retryAfterMs)} seconds`);
}

export async function installRateLimits(v1: FastifyInstance, o: RateLimitOptions): Promise<void> {
  await v1.register(rateLimit, {
    max: o.perKeyMax,
    timeWindow: o.windowMs,
    ...(o.redis ? { redis: o.redis } : {}),
    nameSpace: o.nameSpace,
    // runs after authentication (a route hook), so a key is there; the address is the fallback all the same
    keyGenerator: (request) => {
      const key = bearer(request);
      return key ? `key:${hashApiKey(key)}` : `ip:${addressKey(request.ip)}`;
    },
    // Redis down: serve rather than refuse everyone (readyz reports the outage).
    skipOnError: true,
    errorResponseBuilder: (_request, context) => rateLimited(context.max, o.windowMs, context.ttl, 'API key'),
  });

  const byAddress = v1.createRateLimit({ max: o.perAddressMax, timeWindow: o.windowMs, keyGenerator: (r: FastifyRequest) => `addr:${addressKey(r.ip)}` });
  // an instance hook added before the authentication hook runs before it
  v1.addHook('onRequest', async (request, reply) => {
    const r = await byAddress(request);
    if (r.isAllowed || !r.isExceeded) return;
    reply
      .header('x-ratelimit-limit', r.max)
      .header('x-ratelimit-remaining', 0)
      .header('x-ratelimit-reset', r.ttlInSeconds)
      .header('retry-after', r.ttlInSeconds);
    throw rateLimited(r.max, o.windowMs, r.ttl, 'client address');
  });
}
