/**
 * How `dynasyn serve` keeps a child process running: forked with an IPC channel, it counts as started when it
 * says `ready`; one that fails before that fails serve's start with its own error; one that dies later is
 * logged and started again after a backoff (doubling from `firstMs` to `maxMs`, back to `firstMs` after a run
 * of `resetAfterMs`); stop() sends SIGTERM and, past the grace, SIGKILL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { CliError } from './errors.js';
import type { WorkerMessage } from './worker.js';

export interface ChildSpec {
  /** How serve's lines name it (`worker train`). */
  name: string;
  /** The module node runs in the child, and its arguments. */
  modulePath: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
}

export interface Backoff {
  /** Wait before the first restart. */
  firstMs: number;
  /** Longest wait between restarts. */
  maxMs: number;
  /** A child that ran this long before dying is restarted after `firstMs` again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { firstMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 };

export interface SupervisedChild {
  readonly name: string;
  /** The running process's id (a restart changes it); undefined between a death and its restart. */
  pid(): number | undefined;
  /** Restarts after an unexpected exit so far. */
  restarts(): number;
  /** No more restarts; SIGTERM, then SIGKILL after `graceMs`. Resolves `killed` if it came to SIGKILL. */
  stop(graceMs: number): Promise<'exited' | 'killed'>;
}

const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
const exitOf = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `code ${code}`);

/** Forks the child; `ready` resolves on its `ready` message, rejects with its error if it ends first. */
function launch(spec: ChildSpec): { child: ChildProcess; ready: Promise<void> } {
  const child = fork(spec.modulePath, [...spec.args], { env: spec.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise<void>((resolve, reject) => {
    let failure: string | undefined;
    child.on('message', (m: WorkerMessage) => {
      if (m?.type === 'ready') resolve();
      else if (m?.type === 'failed') failure = m.message;
    });
    child.once('error', (e) => reject(new CliError(`${spec.name} could not be started: ${e.message}`)));
    child.once('exit', (code, signal) =>
      reject(new CliError(`${spec.name} failed to start: ${failure ?? `exited with ${exitOf(code, signal)} before it was ready`}`)),
    );
  });
  return { child, ready };
}

/** Starts `spec` and resolves once it is ready; rejects with the child's error if it fails at start. */
export async function superviseChild(spec: ChildSpec, log: (line: string) => void, backoff: Backoff = DEFAULT_BACKOFF): Promise<SupervisedChild> {
  let current = launch(spec);
  await current.ready;
  let stopping = false;
  let restarts = 0;
  let delay = backoff.firstMs;
  let startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;

  const watch = (child: ChildProcess) =>
    child.once('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - startedAt >= backoff.resetAfterMs) delay = backoff.firstMs;
      log(`${spec.name} (pid ${child.pid}) exited unexpectedly with ${exitOf(code, signal)}; starting it again in ${delay / 1000} s`);
      timer = setTimeout(restart, delay);
      delay = Math.min(delay * 2, backoff.maxMs);
    });
  const restart = () => {
    timer = undefined;
    if (stopping) return;
    restarts += 1;
    startedAt = Date.now();
    current = launch(spec);
    watch(current.child);
    // a failed restart ends in an exit, which the watch above backs off from
    current.ready.then(
      () => log(`${spec.name} started again (pid ${current.child.pid})`),
      (e: Error) => log(e.message),
    );
  };
  watch(current.child);

  return {
    name: spec.name,
    pid: () => (running(current.child) ? current.child.pid : undefined),
    restarts: () => restarts,
    stop: async (graceMs) => {
      stopping = true;
      if (timer) clearTimeout(timer);
      const { child } = current;
      if (!running(child)) return 'exited';
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      let killed = false;
      const hard = setTimeout(() => {
        killed = true;
        log(`${spec.name} still running after ${graceMs / 1000} s; SIGKILL`);
        child.kill('SIGKILL');
      }, graceMs);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(hard);
      return killed ? 'killed' : 'exited';
    },
  };
}
