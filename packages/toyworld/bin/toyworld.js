#!/usr/bin/env node
// The `toyworld` bin. npm links a workspace's bin into node_modules/.bin only if the file exists at install
// time, and dist/ is built after `npm ci`: so the bin is this committed file, which loads the build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`toyworld: ${fileURLToPath(cli)} does not exist: run \`npm run build\` first\n`);
  process.exit(1);
}
await import(cli.href);
