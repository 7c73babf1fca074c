/** The Fastify instance around the app plugin; listening is the caller's (index.ts, tests use inject). */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { app, type AppOptions } from './app.js';

export interface ServerOptions extends AppOptions {
  /** The process's logger (@dynasyn/logger's createLogger); none: nothing is logged (tests). */
  logger?: FastifyBaseLogger;
  /**
   * Which proxies to believe about the client (X-Forwarded-For/-Proto): rate limits by address and the ops
   * cookie's Secure flag depend on it. Default none.
   */
  trustProxy?: boolean | number | string[];
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  const server = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // JSON bodies are small (sample requests); uploads are bounded by the multipart limits instead.
    bodyLimit: 1024 * 1024,
    requestIdHeader: 'x-request-id',
    ...(opts.trustProxy !== undefined ? { trustProxy: trustProxyOption(opts.trustProxy) } : {}),
    // A request that takes longer than this is stuck: free the socket. Uploads of MAX_UPLOAD_BYTES fit easily.
    requestTimeout: 120_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  });
  // fastify-plugin: the app's error handler, 404 handler and schemas apply to the root instance.
  void server.register(fp(app, { name: 'dynasyn-api', fastify: '5.x' }), opts);
  return server;
}

/** A hop count as the function Fastify's types take (its runtime takes the number alike: trust the first n hops). */
function trustProxyOption(t: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof t === 'number' ? (_address, hop) => hop < t : t;
}
