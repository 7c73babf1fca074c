/**
 * Request logs without secrets: a URL's query parameters that carry one (`/ops?token=...`, `?api_key=`,
 * presigned `X-Amz-Signature`) are logged as `[REDACTED]`. Headers are not logged at all (the request
 * serializer below names what is).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Query parameter names that carry a secret (matched anywhere in the name, any case). */
const SECRET_PARAM = /token|secret|key|passw|signature|^sig$|credential|session|auth|cookie/i;

export const REDACTED = '[REDACTED]';

/** `url` with the values of secret-bearing query parameters replaced by `[REDACTED]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // undecodable: judge the raw name
      }
      return eq >= 0 && SECRET_PARAM.test(name) ? `${rawName}=${REDACTED}` : pair;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/** What a request log line says about the request: Fastify's default fields, with the URL redacted. */
export function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Every request's logger (the `incoming request` line, handlers' `request.log`) serializes `req` redacted. */
export function installLogRedaction(app: FastifyInstance): void {
  app.setChildLoggerFactory((logger, bindings, opts) => logger.child(bindings, { ...opts, serializers: { ...opts.serializers, req: serializeRequest } }));
}
