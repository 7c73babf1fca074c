#!/usr/bin/env node
// The `dynasyn` bin. npm links a workspace's bin into node_modules/.bin only if the file exists at install
// time, and dist/ is built after `npm ci`: so the bin is this committed file, which loads the build.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`dynasyn: ${fileURLToPath(main)} does not exist: run \`npm run build\` first\n`);
  process.exit(1);
}

// glibc's malloc keeps freed blocks below its (adaptive, up to 32 MB) mmap threshold in its heaps: a training
// step's tensors of a few MB, freed, stayed with the process, and each SD 2.1 step grew it by ~5 GB. A fixed
// 1 MB threshold hands every block above it back to the system on free. glibc reads it at start, so the bin
// starts node again with it set (unless the caller chose a value).
if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined && process.platform === 'linux') {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576' },
  });
  // Ctrl-C reaches both processes (one process group): the child alone acts on it (a second SIGINT would
  // make `personalize` quit without its checkpoint). A SIGTERM or SIGHUP sent to this process is passed on.
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  await import(main.href);
}
