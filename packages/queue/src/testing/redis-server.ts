/**
 * A Redis server of the test's own (redis-server as a child process, no persistence) on a free port, for tests
 * that stop and restart Redis: the shared Redis on 6379 serves every other test and must never be stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { waitFor } from './wait.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Starts it (again, on the same port, empty) and resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills it (SIGKILL: an outage, not a shutdown) and resolves once the process has exited. */
  stop(): Promise<void>;
}

export async function redisServer(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      if (child) throw new Error(`redis-server on port ${port} is already running`);
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
      const started = spawn('redis-server', [...args, '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
      child = started;
      started.once('exit', () => {
        if (child === started) child = undefined;
      });
      await waitFor(
        `redis-server on port ${port}`,
        () => (child === started ? accepts(port) : Promise.reject(new Error(`redis-server on port ${port} exited`))),
        10_000,
      );
    },
    async stop() {
      const running = child;
      if (!running) return;
      const exited = once(running, 'exit');
      running.kill('SIGKILL');
      await exited;
    },
  };
  await server.start();
  return server;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}
