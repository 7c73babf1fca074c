/**
 * The built `dynasyn` binary as the tests drive it: `buildCli()` (the CLI tests run what users run), `serve` as
 * a subprocess (waited on until ready, killable with SIGKILL, restartable), `tenants create` as a one-shot, and a
 * loopback webhook receiver.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const cliBin = path.join(repoRoot, 'apps/cli/dist/main.js');

/** Builds the CLI and what it depends on into dist (turbo: unchanged packages come from its cache). */
export function buildCli(): void {
  execFileSync(path.join(repoRoot, 'node_modules/.bin/turbo'), ['run', 'build', '--filter=@dynasyn/cli', '--output-logs=errors-only'], {
    cwd: repoRoot,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    stdio: 'pipe',
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServeProcess {
  baseUrl: string;
  child: ChildProcess;
  /** stdout + stderr so far (for failure messages). */
  log(): string;
  /** The worker processes serve reported at start (`workers train (pid 123), ...`), by queue. */
  workerPids(): Record<string, number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill9(): Promise<void>;
}

/** Starts `dynasyn serve` and waits until GET /readyz answers 200 (or fails with the process's output). */
export async function startServe(env: Record<string, string>, port: number, cwd: string, timeoutMs = 120_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, [cliBin, 'serve'], {
    cwd,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const proc: ServeProcess = {
    baseUrl,
    child,
    log: () => out,
    workerPids: () => {
      const line = /dynasyn serve: workers (.*) on queue prefix/.exec(out)?.[1] ?? '';
      return Object.fromEntries([...line.matchAll(/(\w+) \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]));
    },
    stop: async (graceMs = 15_000) => {
      if (gone) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    kill9: async () => {
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`dynasyn serve exited (code ${child.exitCode}) before ready:\n${out.slice(-4000)}`);
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      if (r.status === 200) return proc;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  await proc.kill9();
  throw new Error(`dynasyn serve not ready after ${timeoutMs} ms:\n${out.slice(-4000)}`);
}

/** Whether a process with this id exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `dynasyn ARGS` to completion. */
export function runCli(env: Record<string, string>, cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, [cliBin, ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
}

/** `dynasyn tenants create NAME`: the API key from its `api key: <key>` line. */
export function createTenant(env: Record<string, string>, cwd: string, name: string): string {
  const r = runCli(env, cwd, 'tenants', 'create', name);
  const m = /^api key: (\S+)$/m.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`tenants create ${name} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return m[1]!;
}

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Waits for the first delivery that `match` accepts. */
  waitFor(match: (w: ReceivedWebhook) => boolean, timeoutMs: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

/** A node:http server on loopback that records every POST and answers 204. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    waitFor: async (match, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find(match);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching webhook in ${timeoutMs} ms; got ${received.length}: ${received.map((w) => w.body).join('\n')}`);
        await sleep(200);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Standard Webhooks verification written from the spec, independent of the service's code: HMAC-SHA256
 * over `${webhook-id}.${webhook-timestamp}.${body}` keyed by the base64 part of `whsec_...`, compared
 * against every `v1,<base64>` entry of the space-separated `webhook-signature` header.
 */
export function verifyStandardWebhook(secret: string, w: ReceivedWebhook, toleranceS = 300): boolean {
  const id = w.headers['webhook-id'];
  const ts = w.headers['webhook-timestamp'];
  const sigs = w.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > toleranceS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${w.body}`).digest();
  return sigs.split(' ').some((s) => {
    const [version, b64] = s.split(',');
    if (version !== 'v1' || !b64) return false;
    const got = Buffer.from(b64, 'base64');
    return got.length === expected.length && crypto.timingSafeEqual(got, expected);
  });
}

/** Polls `probe` until it returns a value (not undefined) or the time runs out. */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}
