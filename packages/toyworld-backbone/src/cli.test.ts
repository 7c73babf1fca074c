/**
 * `toyworld-train` as users run it (a subprocess on the package's bin, which loads the built package: dist/,
 * built here with the package's own tsconfig, as `npm test` does before jest): a bad value is refused before
 * anything trains, with one line naming the option, and --debug shows the whole failure with its stack; a
 * recipe runs its chain of runs on the 'test' preset, continues where it stopped, and refuses a bad recipe.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRecipe, RECIPES_DIR } from './recipe.js';
import { readBundleLog } from './train.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(pkg, 'bin', 'toyworld-train.js');
let tmp: string;

/** A bundle's training log, one object per step. */
const logOf = (bundle: string) =>
  readBundleLog(bundle)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { phase: string; step: number });

beforeAll(() => {
  const tsc = spawnSync(process.execPath, [path.join(pkg, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(pkg, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`building the package failed:\n${tsc.stdout}${tsc.stderr}`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'toyworld-train-cli-'));
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const train = (...args: string[]) =>
  spawnSync(process.execPath, [bin, '--out', path.join(tmp, 'out'), '--work', path.join(tmp, 'work'), ...args], { encoding: 'utf8' });

describe('toyworld-train CLI', () => {
  it.each([
    [['--batch', '0'], '--batch must be an integer of at least 1, got "0"'],
    [['--steps', '12abc'], '--steps must be an integer of at least 0, got "12abc"'],
    [['--lr', '0'], '--lr must be a number above 0, got "0"'],
    [['--lr', '0x10'], '--lr must be a number above 0, got "0x10"'],
    [['--threads', '1.5'], '--threads must be an integer of at least 1, got "1.5"'],
  ])('refuses %j in one line, exit code 1, nothing written', (args, message) => {
    const r = train(...args);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`toyworld-train: ${message}\nrun with --debug for stack traces\n`);
    expect(fs.existsSync(path.join(tmp, 'work'))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'out'))).toBe(false);
  });

  it('shows the error with its stack on --debug (and on DYNASYN_DEBUG=1)', () => {
    const r = train('--batch', '0', '--debug');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^toyworld-train: RangeError: --batch must be an integer of at least 1, got "0"\n\s+at /);
    expect(r.stderr).not.toContain('run with --debug');
    const env = spawnSync(process.execPath, [bin, '--batch', '0'], { encoding: 'utf8', env: { ...process.env, DYNASYN_DEBUG: '1' } });
    expect(env.stderr).toMatch(/RangeError: --batch must be .*\n\s+at /);
  });
});

describe('toyworld-train --recipe', () => {
  const TEST = ['--preset', 'test', '--source', 'synthetic'];
  const recipe = {
    stages: [
      {
        name: 'scratch',
        args: [...TEST, '--vae-steps', '2', '--vae-batch', '2', '--decoder-steps', '2', '--decoder-batch', '2', '--steps', '2', '--batch', '2'],
      },
      { name: 'more diffusion', args: [...TEST, '--steps', '2', '--batch', '2'] },
      { name: 'decoder', args: [...TEST, '--refine-decoder', '2', '--decoder-batch', '2', '--steps', '0'] },
    ],
  };
  const run = (file: string, work: string, out: string, ...more: string[]) =>
    spawnSync(process.execPath, [bin, '--recipe', file, '--work', work, '--out', out, '--threads', '1', ...more], { encoding: 'utf8' });

  it('runs the chain, each stage continuing the one before, and a second start runs nothing', () => {
    const file = path.join(tmp, 'chain.json');
    fs.writeFileSync(file, JSON.stringify(recipe));
    const [work, out] = [path.join(tmp, 'chain-work'), path.join(tmp, 'chain-out')];
    const first = run(file, work, out);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/recipe: stage 2 of 3 \(more diffusion\): toyworld-train .*--continue-from \S*stage-1\/bundle/);
    expect(first.stdout.trim().split('\n').pop()).toBe(`done: ${out}`);
    // the last bundle's log holds every stage's steps: 2 + 2 diffusion steps, the decoder's 2 + 2 more
    const log = logOf(out);
    expect(log.filter((l) => l.phase === 'diffusion').map((l) => l.step)).toEqual([0, 1, 2, 3]);
    expect(log.filter((l) => l.phase === 'decoder').map((l) => l.step)).toEqual([0, 1, 2, 3]);
    // its model card's command line for the last run says the settings that are not the CLI's defaults
    expect(fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8')).toContain(
      '`npm run toyworld:train -- --continue-from <that bundle> --work <another directory> --preset test --source synthetic --refine-decoder 2 --decoder-batch 2',
    );
    const written = fs.statSync(path.join(out, 'model_index.json')).mtimeMs;
    const again = run(file, work, out);
    expect(again.status).toBe(0);
    expect(again.stdout.match(/done before/g)).toHaveLength(3);
    expect(fs.statSync(path.join(out, 'model_index.json')).mtimeMs).toBe(written);
    // the last stage gone: only it runs again
    fs.rmSync(path.join(work, 'stage-3'), { recursive: true });
    fs.rmSync(out, { recursive: true });
    const resumed = run(file, work, out);
    expect(resumed.status).toBe(0);
    expect(resumed.stdout.match(/done before/g)).toHaveLength(2);
    expect(resumed.stdout).toMatch(/recipe: stage 3 of 3 \(decoder\): toyworld-train /);
    expect(logOf(out).filter((l) => l.phase === 'diffusion')).toHaveLength(4);
  }, 180_000);

  it('stops before a stage when --minutes are spent, and says how to go on', () => {
    const file = path.join(tmp, 'timed.json');
    fs.writeFileSync(file, JSON.stringify(recipe));
    const r = run(file, path.join(tmp, 'timed-work'), path.join(tmp, 'timed-out'), '--minutes', '0.00001');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/out of time before stage 1 of 3 \(scratch\); run the same command again to continue/);
    expect(fs.existsSync(path.join(tmp, 'timed-out'))).toBe(false);
  });

  it('refuses a recipe that sets what the runner sets, and flags beside --recipe, before anything runs', () => {
    const file = path.join(tmp, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ stages: [{ name: 'scratch', args: ['--out', 'somewhere'] }] }));
    const bad = run(file, path.join(tmp, 'bad-work'), path.join(tmp, 'bad-out'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`toyworld-train: ${file}: stage 1 (scratch) gives --out: the recipe runner sets those\nrun with --debug for stack traces\n`);
    const mixed = run(path.join(tmp, 'chain.json'), path.join(tmp, 'bad-work'), path.join(tmp, 'bad-out'), '--steps', '5');
    expect(mixed.status).toBe(1);
    expect(mixed.stderr).toMatch(/--recipe takes each stage's flags from the recipe; not --steps/);
    expect(fs.existsSync(path.join(tmp, 'bad-work'))).toBe(false);
  });

  it("the package's toyworld recipe reads: nine stages, each a valid set of flags", () => {
    const r = readRecipe(path.join(RECIPES_DIR, 'toyworld.json'));
    expect(r.stages).toHaveLength(9);
    expect(r.stages[0]!.args).toEqual([]); // the first bundle: the CLI's defaults
    expect(r.stages.at(-1)!.args).toEqual(expect.arrayContaining(['--refine-decoder', '2500', '--steps', '0']));
  });
});
