/**
 * `toyworld-train` as users run it (a subprocess on the package's bin, which loads the built package: dist/,
 * built here with the package's own tsconfig, as `npm test` does before jest): a bad value is refused before
 * anything trains, with one line naming the option, and --debug shows the whole failure with its stack.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(pkg, 'bin', 'toyworld-train.js');
let tmp: string;

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
