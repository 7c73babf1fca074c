/**
 * `dynasyn evaluate --jobs 2` as a user runs it: the built binary as a subprocess, on the tiny bundle and a tiny
 * CLIP (smoke preset, two cheap methods x two seeds). Two child processes share the output directory, each
 * with its own shard of the runs; their run lines come prefixed, their logs go to <out>/logs, and the command
 * ends with the complete tables and report.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createExampleInput } from '@dynasyn/dynasyn';
import { writeTinyClip } from '../../../../packages/dynasyn/src/testing/tiny-clip.js';
import { buildCli } from '../e2e/processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const bin = path.join(root, 'apps/cli/dist/main.js');
let dir: string;

const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, DYNASYN_DEBUG: '' } });

beforeAll(async () => {
  buildCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-evaluate-cli-'));
  expect(run('bundle', 'create-tiny', 'tiny').status).toBe(0);
  writeTinyClip(path.join(dir, 'clip'));
  const ex = await createExampleInput(path.join(dir, 'example'));
  fs.writeFileSync(
    path.join(dir, 'protocol.json'),
    JSON.stringify({
      version: 1,
      name: 'jobs',
      backbone: 'tiny',
      clip: 'clip',
      preset: 'smoke',
      methods: ['class-words', 'textual-inversion'],
      seeds: [1, 2],
      scenes: [{ id: 'example', image: path.relative(dir, ex.image), masks: ex.masks.map((m) => path.relative(dir, m)), classes: ['ball', 'box'] }],
      prompts: { plain: ['<asset0> on the beach'], action: ['<asset1> jumping'], interaction: ['<asset0> next to <asset1>'] },
      sampling: { samplesPerPrompt: 1 },
    }),
  );
}, 300_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('--jobs 2: two processes, each its shard of the runs, one complete table at the end', () => {
  const r = run('evaluate', '--protocol', 'protocol.json', '--out', 'eval', '--jobs', '2');
  expect(r.stderr).not.toMatch(/failed/);
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/^2 jobs, 1 thread each/m);
  // each job ran half the runs, each method once (scene, method and seed positions summing to its shard modulo 2)
  const lines = r.stderr.split('\n');
  const runsOf = (k: number) => lines.filter((l) => l.startsWith(`job ${k}: [`)).map((l) => l.replace(/^job \d: \[\d+\/4\] /, ''));
  expect(runsOf(0)).toEqual(['example/class-words/seed-1', 'example/textual-inversion/seed-2']);
  expect(runsOf(1)).toEqual(['example/class-words/seed-2', 'example/textual-inversion/seed-1']);
  for (const k of [0, 1]) expect(fs.readFileSync(path.join(dir, 'eval', 'logs', `job-${k}.log`), 'utf8')).toMatch(/scored/);
  const results = JSON.parse(fs.readFileSync(path.join(dir, 'eval', 'results.json'), 'utf8')) as { complete: boolean; runs: unknown[] };
  expect(results.complete).toBe(true);
  expect(results.runs).toHaveLength(4);
  expect(r.stdout.trim().split('\n')).toEqual(['results.md', 'results.json', 'report.html'].map((f) => path.join(dir, 'eval', f)));
  expect(fs.existsSync(path.join(dir, 'eval', 'report.html'))).toBe(true);
  // the final pass lists no finished run again
  expect(r.stderr).not.toMatch(/in the ledger/);
}, 600_000);

test('--jobs with --shard, or a bad shard, is refused with one line', () => {
  const both = run('evaluate', '--protocol', 'protocol.json', '--out', 'x', '--jobs', '2', '--shard', '0/2');
  expect(both.status).not.toBe(0);
  expect(both.stderr).toMatch(/--jobs and --shard exclude each other/);
  const bad = run('evaluate', '--protocol', 'protocol.json', '--out', 'x', '--shard', '2/2');
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toMatch(/expected K\/N with 0 <= K < N/);
});
