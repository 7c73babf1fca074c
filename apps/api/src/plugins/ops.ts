/**
 * /ops, for operators only: a health page (queue depths, throughput, failures, stalled jobs, oldest waiting
 * job, worker heartbeats, GPU workers), its JSON, and bull-board read-only at /ops/queues. Opened by the
 * OPS_TOKEN as a Bearer header, or once in a browser with `/ops?token=...` (then an HttpOnly cookie).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { QueueHealth } from '@dynasyn/queue';
import type { ApiQueues } from '../deps.js';
import { Unauthorized } from '../errors.js';
import { bearer } from './auth.js';

const COOKIE = 'dynasyn_ops';

export async function opsPlugin(app: FastifyInstance, opts: { queues: ApiQueues; token: string }): Promise<void> {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = digest(opts.token);
  const matches = (candidate: string | null | undefined) => !!candidate && timingSafeEqual(digest(candidate), expected);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as { token?: string } | undefined;
    if (matches(query?.token)) {
      // Trade the token in the URL for a cookie at once, so it does not linger in history or logs.
      reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(query!.token!)}; Path=/ops; HttpOnly; SameSite=Strict`);
      return reply.redirect(request.url.split('?')[0]!, 303);
    }
    if (matches(bearer(request)) || matches(cookie(request, COOKIE))) return;
    throw new Unauthorized();
  });

  app.get('/ops', { schema: { hide: true } }, async (_request, reply) => {
    const health = await opts.queues.health();
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderHealthPage(health, new Date()));
  });
  app.get('/ops/health.json', { schema: { hide: true } }, async () => ({ queues: await opts.queues.health() }));

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
    if (k === name) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return null;
      }
    }
  }
  return null;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const age = (ms: number | null) => (ms === null ? '-' : ms < 60_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 60_000).toFixed(1)} min`);

export function renderHealthPage(queues: QueueHealth[], now: Date): string {
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
<h2>Queues</h2>
<table><tr><th>queue</th><th>ready</th><th>active</th><th>delayed</th><th>waiting on children</th><th>failed</th><th>stalled</th><th>completed</th><th>done/min</th><th>failed/min</th><th>oldest waiting</th><th>workers</th><th>GPU workers</th></tr>
${rows || '<tr><td colspan="13">no queues</td></tr>'}</table>
<h2>Worker heartbeats</h2>
<table><tr><th>queue</th><th>worker</th><th>process</th><th>device</th><th>jobs</th><th>last beat</th></tr>
${workers || '<tr><td colspan="6">no worker seen</td></tr>'}</table>
</body></html>`;
}
