/**
 * /ops, for operators only: a health page (what Postgres knows of the work: personalizations by status, work
 * stuck past its stage's lease, recoveries, failed webhook deliveries; and the queues: depths, throughput,
 * failures, stalled jobs, oldest waiting job, worker heartbeats, GPU workers), its JSON, and bull-board read-only
 * at /ops/queues. Opened by the OPS_TOKEN as a Bearer header, or once in a browser with `/ops?token=...`, traded
 * at once for a signed session cookie (the token itself is never stored in the browser).
 */
import { createHmac, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { QueueHealth } from '@dynasyn/queue';
import type { ApiQueues, WorkSnapshot } from '../deps.js';
import { Unauthorized } from '../errors.js';
import { bearer } from './auth.js';

const COOKIE = 'dynasyn_ops';
/** How long a browser session lasts; rotating OPS_TOKEN ends every session at once. */
export const OPS_SESSION_SECONDS = 12 * 3600;

export interface OpsOptions {
  queues: ApiQueues;
  /** What Postgres knows of the work (deps.db.ops.workSnapshot with the stage lease bound). */
  work: () => Promise<WorkSnapshot>;
  token: string;
}

/**
 * Session values `v1.<expires>.<nonce>.<hmac>`: an HMAC-SHA256 under a key derived from OPS_TOKEN (so no second
 * secret to manage, and a new token revokes old sessions), checked in constant time, with an expiry inside.
 */
export function opsSessions(token: string, now: () => number = Date.now) {
  const key = createHmac('sha256', token).update('dynasyn ops session key v1').digest();
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');
  return {
    issue(): string {
      const payload = `v1.${Math.floor(now() / 1000) + OPS_SESSION_SECONDS}.${randomBytes(12).toString('base64url')}`;
      return `${payload}.${mac(payload)}`;
    },
    valid(value: string | null): boolean {
      const m = value ? /^(v1\.(\d{1,12})\.[A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/.exec(value) : null;
      if (!m) return false;
      const expected = Buffer.from(mac(m[1]!));
      const given = Buffer.from(m[3]!);
      return given.length === expected.length && timingSafeEqual(given, expected) && Number(m[2]) * 1000 > now();
    },
  };
}

export async function opsPlugin(app: FastifyInstance, opts: OpsOptions): Promise<void> {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = digest(opts.token);
  const matches = (candidate: string | null | undefined) => !!candidate && timingSafeEqual(digest(candidate), expected);
  const sessions = opsSessions(opts.token);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as { token?: string } | undefined;
    if (matches(query?.token)) {
      // Trade the token in the URL for a session at once, so it does not linger in history; the request log
      // never shows it (plugins/log-redaction.ts). Secure whenever the client came over TLS (trustProxy: as the
      // proxy says).
      const secure = request.protocol === 'https' ? '; Secure' : '';
      reply.header('set-cookie', `${COOKIE}=${sessions.issue()}; Path=/ops; Max-Age=${OPS_SESSION_SECONDS}; HttpOnly; SameSite=Strict${secure}`);
      return reply.redirect(request.url.split('?')[0]!, 303);
    }
    if (matches(bearer(request)) || sessions.valid(cookie(request, COOKIE))) return;
    throw new Unauthorized();
  });

  app.get('/ops', { schema: { hide: true } }, async (_request, reply) => {
    const [health, work] = await Promise.all([opts.queues.health(), opts.work().catch(() => null)]);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(renderHealthPage(health, new Date(), work));
  });
  app.get('/ops/health.json', { schema: { hide: true } }, async (_request, reply) => {
    const [queues, work] = await Promise.all([opts.queues.health(), opts.work()]);
    return reply.header('cache-control', 'no-store').send({ queues, work });
  });

  const serverAdapter = new FastifyAdapter();
  createBullBoard({
    queues: opts.queues.queues().map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'DynASyn queues' } },
  });
  serverAdapter.setBasePath('/ops/queues');
  await app.register(serverAdapter.registerPlugin(), { prefix: '/ops/queues' });
}

function cookie(request: FastifyRequest, name: string): string | null {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const age = (ms: number | null) => (ms === null ? '-' : ms < 60_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 60_000).toFixed(1)} min`);

export function renderHealthPage(queues: QueueHealth[], now: Date, work: WorkSnapshot | null = null): string {
  const t = now.getTime();
  const rows = queues
    .map(
      (q) =>
        `<tr><td>${esc(q.queue)}${q.isPaused ? ' (paused)' : ''}</td><td>${q.depth}</td><td>${q.active}</td><td>${q.delayed}</td>` +
        `<td>${q.waitingChildren}</td><td class="${q.failed ? 'bad' : ''}">${q.failed}</td><td class="${q.stalled ? 'bad' : ''}">${q.stalled}</td>` +
        `<td>${q.completed}</td><td>${q.throughput.completedPerMinute.toFixed(1)}</td><td>${q.throughput.failedPerMinute.toFixed(1)}</td>` +
        `<td>${age(q.oldestWaitingAgeMs)}</td><td>${q.workers.length}</td><td>${q.workers.filter((w) => w.device === 'cuda').length}</td></tr>`,
    )
    .join('\n');
  const workers = queues
    .flatMap((q) =>
      q.workers.map(
        (w) =>
          `<tr><td>${esc(q.queue)}</td><td>${esc(w.workerId)}</td><td>${esc(w.host)}:${w.pid}</td><td>${w.device === 'cuda' ? 'GPU' : 'CPU'}</td>` +
          `<td>${w.activeJobs}/${w.concurrency}</td><td>${age(t - Date.parse(w.beatAt))} ago</td></tr>`,
      ),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><title>DynASyn ops</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin-bottom:2rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}td:first-child,th:first-child{text-align:left}
.bad{background:#fdd}</style></head><body>
<h1>DynASyn ops</h1><p>${esc(now.toISOString())} &middot; <a href="/ops/queues">queues (bull-board, read-only)</a> &middot; <a href="/ops/health.json">JSON</a></p>
${renderWork(work)}
<h2>Queues</h2>
<table><tr><th>queue</th><th>ready</th><th>active</th><th>delayed</th><th>waiting on children</th><th>failed</th><th>stalled</th><th>completed</th><th>done/min</th><th>failed/min</th><th>oldest waiting</th><th>workers</th><th>GPU workers</th></tr>
${rows || '<tr><td colspan="13">no queues</td></tr>'}</table>
<h2>Worker heartbeats</h2>
<table><tr><th>queue</th><th>worker</th><th>process</th><th>device</th><th>jobs</th><th>last beat</th></tr>
${workers || '<tr><td colspan="6">no worker seen</td></tr>'}</table>
</body></html>`;
}

/** The Postgres half of the page: the system of record, which still knows the work when Redis has lost it. */
function renderWork(work: WorkSnapshot | null): string {
  if (!work) return '<h2>Work (Postgres)</h2><p class="bad">Postgres did not answer</p>';
  const cell = (n: number) => `<td class="${n ? 'bad' : ''}">${n}</td>`;
  const statuses = Object.entries(work.personalizations)
    .map(([status, n]) => `<tr><td>${esc(status)}</td><td>${n}</td></tr>`)
    .join('');
  const stale = Object.entries(work.stale)
    .map(([status, s]) => `<tr><td>${esc(status)}</td>${cell(s.count)}<td>${age(s.oldestSeconds === null ? null : s.oldestSeconds * 1000)}</td></tr>`)
    .join('');
  const recoveries = work.recoveries === null ? '<td>not recorded by this schema</td>' : cell(work.recoveries.personalizations + work.recoveries.samples);
  return `<h2>Work (Postgres)</h2>
<table><tr><th>personalization status</th><th>count</th></tr>${statuses}</table>
<table><tr><th>stage quiet past its lease</th><th>count</th><th>quiet for</th></tr>${stale}
<tr><td>queued (oldest)</td><td>${work.personalizations.queued}</td><td>${age(work.oldestQueuedSeconds === null ? null : work.oldestQueuedSeconds * 1000)}</td></tr></table>
<table><tr><th>recoveries</th><th>failed webhook deliveries</th><th>pending webhook deliveries</th></tr>
<tr>${recoveries}${cell(work.webhookDeliveries.failed)}<td>${work.webhookDeliveries.pending}</td></tr></table>`;
}
