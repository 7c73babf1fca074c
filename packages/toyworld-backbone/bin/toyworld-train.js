#!/usr/bin/env node
// A failure prints its message and causes (whole, with stacks, on --debug or DYNASYN_DEBUG=1) and exits 1.
import { runCommand } from '@dynasyn/domain';
await runCommand('toyworld-train', () => import('../dist/cli.js'));
