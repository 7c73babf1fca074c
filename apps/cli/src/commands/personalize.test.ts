/**
 * `dynasyn personalize | augment | report` as a user runs them: the built binary as a subprocess, on the
 * tiny bundle with the tiny preset. The slow test of the CLI (two short personalizations, about 2 minutes
 * on two cores): the full job's artifacts, a rerun that finds everything done, and Ctrl-C during training
 * then a rerun that resumes and ends with exactly the tensors of the uninterrupted run.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createExampleInput } from '@dynasyn/dynasyn';
import { buildCli } from '../e2e/processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const bin = path.join(root, 'apps/cli/dist/main.js');
let dir: string;
let input: string[];
// the tiny preset's phase 1 rate, and half its phase 2 rate: the manifest must record what the flags say
const rates = ['--phase1-lr', '0.005', '--phase2-lr', '0.0005'];

const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, DYNASYN_DEBUG: '' } });
const json = (file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
/** A failure without --debug: one line, then only `caused by:` lines and the hint to --debug; no stack. */
const oneLineError = (r: ReturnType<typeof run>) => {
  expect(r.status).not.toBe(0);
  const [first, ...rest] = r.stderr.trim().split('\n');
  expect(rest.filter((l) => !/^\s+caused by: /.test(l) && l !== 'run with --debug for stack traces')).toEqual([]);
  return first!;
};

beforeAll(async () => {
  buildCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-personalize-cli-'));
  expect(run('bundle', 'create-tiny', 'tiny').status).toBe(0);
  const ex = await createExampleInput(path.join(dir, 'example'));
  input = ['--backbone', 'tiny', '--image', ex.image, '--mask', ex.masks[0]!, '--class', 'ball', '--mask', ex.masks[1]!, '--class', 'box', '--preset', 'tiny'];
}, 300_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('personalize writes the manifest, learned tensors, metrics, samples, heatmaps and report.html; a rerun finds it done', () => {
  const r = run('personalize', ...input, ...rates, '--out', 'full');
  expect(r.stderr).not.toMatch(/dynasyn: /);
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe(path.join(dir, 'full', 'report.html'));
  // plain progress lines (not a TTY), one per stage step, training lines with every loss term
  expect(r.stderr).toMatch(/^GSA: 2\/2/m);
  expect(r.stderr).toMatch(/^train phase 1: 6\/6 md \S+ m2a \S+ ica \S+ aug \S+ total \S+$/m);
  expect(r.stderr).toMatch(/^train phase 2: 6\/6 /m);
  expect(r.stderr).toMatch(/^sample: 12\/12$/m);
  expect(r.stderr).toMatch(/random weights/);

  const manifest = json('full/manifest.json');
  expect(manifest.tokens).toEqual(['<asset0>', '<asset1>']);
  expect(manifest.classWords).toEqual(['ball', 'box']);
  expect((manifest.backbone as { randomWeights: boolean }).randomWeights).toBe(true);
  expect(manifest.phasesCompleted).toEqual(expect.arrayContaining(['prepare', 'compose', 'augment', 'phase1', 'phase2', 'sample', 'report']));
  const train = (manifest.options as { train: Record<string, { steps: number; lr: number }> }).train;
  expect([train.phase1, train.phase2]).toEqual([
    { steps: 6, lr: 0.005 },
    { steps: 6, lr: 0.0005 },
  ]);
  for (const f of [
    'embeddings.safetensors',
    'adapters.safetensors',
    'composed/augmented.json',
    'augmented/augmented.json',
    'input/reference.png',
    'attention/before_0.png',
    'attention/after_1.png',
    'samples/000.png',
    'samples/001.png',
  ]) {
    expect(fs.existsSync(path.join(dir, 'full', f))).toBe(true);
  }
  const metrics = json('full/metrics.json') as { steps: Record<string, number>[]; timings: Record<string, number> };
  expect(metrics.steps).toHaveLength(12);
  for (const s of metrics.steps) for (const k of ['md', 'm2a', 'ica', 'aug', 'total']) expect(Number.isFinite(s[k])).toBe(true);
  expect(Object.keys(metrics.timings)).toEqual(expect.arrayContaining(['augment', 'gsa', 'train', 'sample']));
  const samples = (json('full/samples.json') as { samples: { prompt: string; seed: number; category: string }[] }).samples;
  expect(samples.map((s) => s.seed)).toEqual([0, 1]);
  expect(samples[0]!.prompt).toMatch(/<asset0>/);
  const html = fs.readFileSync(path.join(dir, 'full', 'report.html'), 'utf8');
  expect(html).toMatch(/<img/);
  expect(html).toMatch(/random/i);

  // rerun: every stage is done, only the report is rendered again
  const again = run('personalize', ...input, ...rates, '--out', 'full');
  expect(again.status).toBe(0);
  expect(again.stderr).not.toMatch(/^train/m);
  expect(again.stdout.trim()).toBe(path.join(dir, 'full', 'report.html'));
  // another thread count is the same run on another machine: accepted, nothing recomputed
  const otherThreads = run('personalize', ...input, ...rates, '--out', 'full', '--threads', '1');
  expect(otherThreads.status).toBe(0);
  expect(otherThreads.stderr).not.toMatch(/^train/m);
  // the same directory with other options is another run: refused, naming the option
  expect(oneLineError(run('personalize', ...input, ...rates, '--out', 'full', '--seed', '3'))).toMatch(
    /full holds another personalization \(different options: seed\)/,
  );
  const report = run('report', 'full');
  expect(report.status).toBe(0);
  expect(report.stdout.trim()).toBe(path.join(dir, 'full', 'report.html'));
}, 300_000);

test('Ctrl-C during training stops at a checkpoint; rerunning resumes and ends as the uninterrupted run', async () => {
  const child = spawn(process.execPath, [bin, 'personalize', ...input, ...rates, '--out', 'cut'], { cwd: dir });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    const before = stderr;
    stderr += d.toString();
    if (!/train phase 2: 1\//.test(before) && /train phase 2: 1\//.test(stderr)) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code).not.toBe(0);
  expect(stderr).toMatch(/dynasyn: interrupted; rerun the same command to resume/);
  expect(stderr).not.toMatch(/train phase 2: 6\/6/);

  const r = run('personalize', ...input, ...rates, '--out', 'cut');
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/resumed training at phase 2, step [1-5]/);
  expect(r.stderr).not.toMatch(/^GSA/m); // the augmented set is reused
  // exact resume: the same learned tensors and the same per-step losses as the uninterrupted run
  if (fs.existsSync(path.join(dir, 'full', 'embeddings.safetensors'))) {
    for (const f of ['embeddings.safetensors', 'adapters.safetensors']) {
      expect(fs.readFileSync(path.join(dir, 'cut', f)).equals(fs.readFileSync(path.join(dir, 'full', f)))).toBe(true);
    }
    const steps = (d: string) => (json(`${d}/metrics.json`) as { steps: Record<string, number>[] }).steps.map(({ ms: _ms, ...rest }) => rest);
    expect(steps('cut')).toEqual(steps('full'));
  }
}, 300_000);

test('augment alone writes an augmented set', () => {
  const r = run('augment', ...input, '--augmentations', '1', '--out', 'aug');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/augmented\.json \(1 augmented images\)/);
  const set = json('aug/augmented.json') as { examples: { image: string; prompt: string }[] };
  expect(set.examples).toHaveLength(1);
  expect(fs.existsSync(path.join(dir, 'aug', set.examples[0]!.image))).toBe(true);
}, 120_000);

test('bad input exits non-zero with one clear line', () => {
  const ex = path.join(dir, 'example');
  const base = ['--backbone', 'tiny', '--image', path.join(ex, 'image.png'), '--out', 'bad', '--preset', 'tiny'];
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png')))).toMatch(/1 --mask but 0 --class/);
  expect(oneLineError(run('personalize', ...base))).toMatch(/at least one --mask/);
  expect(oneLineError(run('personalize', ...base, '--mask', 'nope.png', '--class', 'ball'))).toMatch(/cannot read mask nope\.png: no such file/);
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', '<ball>'))).toMatch(/class word .* contains < or >/);
  expect(
    oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', 'ball', '--mask', path.join(ex, 'mask0.png'), '--class', 'box')),
  ).toMatch(/overlap almost completely/);
  expect(oneLineError(run('personalize', ...base.slice(0, -1), 'huge', '--mask', path.join(ex, 'mask0.png'), '--class', 'ball'))).toMatch(/--preset.*huge/);
  fs.writeFileSync(path.join(dir, 'prompts.txt'), 'a photo of <asset3>\n');
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', 'ball', '--prompts', 'prompts.txt'))).toMatch(
    /prompts line 1: <asset3> names no subject/,
  );
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', 'ball', '--judge', 'judge'))).toMatch(
    /--judge needs --clip/,
  );
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', 'ball', '--phase2-lr', '0'))).toMatch(
    /--phase2-lr.*above 0/,
  );
  expect(oneLineError(run('personalize', ...base, '--mask', path.join(ex, 'mask0.png'), '--class', 'ball', '--phase1-lr', 'fast'))).toMatch(/--phase1-lr/);
  expect(oneLineError(run('report', 'missing-dir'))).toMatch(/missing-dir/);
});
