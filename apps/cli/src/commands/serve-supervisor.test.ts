/**
 * serve's supervision of its worker processes, with small node scripts as the children (they speak the same
 * IPC messages as `dynasyn worker`): a start failure is serve's failure with the child's message; a child that
 * dies is started again; stop() ends a child with SIGTERM, or SIGKILL when it does not stop within the grace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { superviseChild, type SupervisedChild } from './serve-supervisor.js';

let dir: string;
const started: SupervisedChild[] = [];
const fast = { firstMs: 10, maxMs: 40, resetAfterMs: 60_000 };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-supervisor-'));
});
afterAll(async () => {
  await Promise.all(started.map((c) => c.stop(1_000)));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A child script: `body` runs with `send(message)` at hand. */
function script(name: string, body: string): string {
  const file = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(file, `const send = (m) => process.send(m);\n${body}\n`);
  return file;
}

async function supervise(modulePath: string, log: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const c = await superviseChild({ name: 'worker test', modulePath, args: [], env: { PATH: process.env.PATH, ...env } }, (l) => log.push(l), fast);
  started.push(c);
  return c;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function eventually<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never: ${what}`);
}

test("a child that fails at start fails the start with that child's error", async () => {
  const bad = script('bad', `send({ type: 'failed', message: 'BACKBONE: no bundle at /nowhere' }, undefined, undefined, () => process.exit(1));`);
  await expect(supervise(bad)).rejects.toThrow('worker test failed to start: BACKBONE: no bundle at /nowhere');
  const silent = script('silent', 'process.exit(3);');
  await expect(supervise(silent)).rejects.toThrow('worker test failed to start: exited with code 3 before it was ready');
});

test('a child that dies after its start is logged and started again', async () => {
  const log: string[] = [];
  const c = await supervise(script('ok', "send({ type: 'ready' }); setInterval(() => {}, 1000);"), log);
  const first = c.pid()!;
  process.kill(first, 'SIGKILL');
  const second = await eventually('a new process', () => {
    const pid = c.pid();
    return pid !== undefined && pid !== first ? pid : undefined;
  });
  expect(alive(second)).toBe(true);
  expect(c.restarts()).toBe(1);
  await eventually('the restart logged', () => (log.some((l) => l.includes('started again')) ? true : undefined));
  expect(log[0]).toMatch(new RegExp(`worker test \\(pid ${first}\\) exited unexpectedly with signal SIGKILL; starting it again in 0.01 s`));
  expect(await c.stop(5_000)).toBe('exited');
  expect(alive(second)).toBe(false);
});

test('stop() sends SIGTERM and waits for the close; a child that ignores it is killed after the grace', async () => {
  const marker = path.join(dir, 'closed');
  const polite = await supervise(
    script(
      'polite',
      `import fs from 'node:fs';
       process.on('SIGTERM', () => setTimeout(() => { fs.writeFileSync(process.env.MARKER, 'yes'); process.exit(0); }, 50));
       send({ type: 'ready' }); setInterval(() => {}, 1000);`,
    ),
    [],
    { MARKER: marker },
  );
  expect(await polite.stop(10_000)).toBe('exited');
  expect(fs.readFileSync(marker, 'utf8')).toBe('yes');

  const log: string[] = [];
  const stubborn = await supervise(script('stubborn', "process.on('SIGTERM', () => {}); send({ type: 'ready' }); setInterval(() => {}, 1000);"), log);
  const pid = stubborn.pid()!;
  expect(await stubborn.stop(300)).toBe('killed');
  expect(alive(pid)).toBe(false);
  expect(log).toContain('worker test still running after 0.3 s; SIGKILL');
  // a stopped child is not started again
  expect(stubborn.pid()).toBeUndefined();
});
