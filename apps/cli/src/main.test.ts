/** The `dynasyn` command as a user runs it (the package's bin, which loads dist/): a subprocess on a tiny bundle. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePng } from '@dynasyn/imaging';
import { buildCli } from './e2e/processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/dynasyn.js');
let dir: string;

const runWith = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, DYNASYN_DEBUG: '', ...env } });
const run = (...args: string[]) => runWith({}, ...args);
/** Width and height from a PNG's IHDR chunk. */
const pngSize = (file: string) => {
  const b = fs.readFileSync(file);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
};
/** A failure without --debug: one line, then only `caused by:` lines and the hint to --debug; no stack. */
const oneLineError = (r: ReturnType<typeof run>) => {
  expect(r.status).toBe(1);
  const [first, ...rest] = r.stderr.trim().split('\n');
  expect(rest.filter((l) => !/^\s+caused by: /.test(l) && l !== 'run with --debug for stack traces')).toEqual([]);
  return first!;
};

beforeAll(() => {
  // the test runs what users run: dist, built (turbo caches unchanged packages)
  buildCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-cli-'));
  const r = run('bundle', 'create-tiny', 'tiny', '--seed', '5');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 180_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('bundle create-tiny writes a bundle in the model layout', () => {
  for (const f of ['model_index.json', 'unet/model.onnx', 'text_encoder/model.onnx', 'vae_decoder/model.onnx', 'tokenizer/vocab.json']) {
    expect(fs.existsSync(path.join(dir, 'tiny', f))).toBe(true);
  }
});

test('sample writes a PNG of the native size; the same seed gives the same bytes, another seed other bytes', () => {
  const a = run('sample', '--backbone', 'tiny', '--prompt', 'a cat', '--steps', '3', '--seed', '1', '--out', 'a.png');
  expect(a.status).toBe(0);
  expect(a.stdout).toMatch(/a\.png \(128x128, seed 1\)/);
  expect(a.stderr).toMatch(/^sample: step 3\/3$/m); // not a TTY: plain progress lines
  expect(run('sample', '--backbone', 'tiny', '--prompt', 'a cat', '--steps', '3', '--seed', '1', '--out', 'b.png').status).toBe(0);
  expect(run('sample', '--backbone', 'tiny', '--prompt', 'a cat', '--steps', '3', '--seed', '2', '--out', 'c.png', '--scheduler', 'euler').status).toBe(0);
  expect(pngSize(path.join(dir, 'a.png'))).toEqual([128, 128]);
  expect(fs.readFileSync(path.join(dir, 'a.png')).equals(fs.readFileSync(path.join(dir, 'b.png')))).toBe(true);
  expect(fs.readFileSync(path.join(dir, 'a.png')).equals(fs.readFileSync(path.join(dir, 'c.png')))).toBe(false);
});

test('image-to-image from an image of another size writes a native-size PNG', async () => {
  const w = 96,
    h = 60,
    data = new Uint8Array(w * h * 3).map((_, i) => (i * 7) & 255);
  fs.writeFileSync(path.join(dir, 'in.png'), await encodePng({ width: w, height: h, data }));
  const r = run('sample', '--backbone', 'tiny', '--prompt', 'a dog', '--image', 'in.png', '--strength', '0.5', '--steps', '4', '--seed', '3', '--out', 'i.png');
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/^img2img: step 2\/2$/m);
  expect(pngSize(path.join(dir, 'i.png'))).toEqual([128, 128]);
});

test('bad input exits non-zero with one clear line', () => {
  expect(oneLineError(run('sample', '--backbone', 'missing', '--prompt', 'x'))).toMatch(/missing.*does not exist/);
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--steps', 'ten'))).toMatch(/--steps.*ten.*integer/);
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--guidance', 'high'))).toMatch(/--guidance/);
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--scheduler', 'pndm'))).toMatch(/ddpm, ddim, euler/);
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--image', 'nope.png'))).toMatch(/cannot read image nope\.png/);
  fs.writeFileSync(path.join(dir, 'junk.png'), 'not an image');
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--image', 'junk.png'))).toMatch(/cannot decode image junk\.png/);
  expect(oneLineError(run('sample', '--backbone', 'tiny', '--prompt', 'x', '--strength', '0.5'))).toMatch(/--strength needs --image/);
  expect(oneLineError(run('bundle', 'create-tiny', 'x', '--seed', '-1'))).toMatch(/--seed/);
  expect(oneLineError(run('bundle', 'create-sd21', '--out', 'x', '--variant', 'sd15'))).toMatch(/--variant.*sd21-base, sd21/);
  expect(oneLineError(run('bundle', 'create-sd21', '--out', 'x', '--dtype', 'int8'))).toMatch(/--dtype.*fp32, fp16/);
  expect(oneLineError(run('bundle', 'create-sd21', '--variant', 'sd21'))).toMatch(/--out/);
});

test('a failure prints its code and every cause; --debug (before or after the command) or DYNASYN_DEBUG=1 adds each stack', () => {
  fs.cpSync(path.join(dir, 'tiny'), path.join(dir, 'broken'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'broken', 'model_index.json'), '{"_class_name": ');
  const args = ['sample', '--backbone', 'broken', '--prompt', 'x'];
  const plain = run(...args);
  expect(plain.status).toBe(1);
  expect(plain.stderr.split('\n')).toEqual([
    expect.stringMatching(/^dynasyn: \S*broken\/model_index\.json .*is not valid JSON: .+ \[BAD_CONFIG\]$/),
    expect.stringMatching(/^  caused by: SyntaxError: \S/),
    'run with --debug for stack traces',
    '',
  ]);
  for (const r of [run('--debug', ...args), run(...args, '--debug'), runWith({ DYNASYN_DEBUG: '1' }, ...args)]) {
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dynasyn: DiffusionError \[BAD_CONFIG\]: .*model_index\.json.*\n {2}at /);
    expect(r.stderr).toMatch(/\n {2}caused by: SyntaxError: .*\n {4}at /);
    expect(r.stderr).not.toContain('run with --debug');
  }
});

test('--help through the bin lists the commands and --debug', () => {
  const r = run('--help');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/--debug/);
  expect(r.stdout).toMatch(/personalize/);
});

test('the bin without a build says to build first', () => {
  const copy = path.join(dir, 'unbuilt', 'bin', 'dynasyn.js');
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(bin, copy);
  const r = spawnSync(process.execPath, [copy, '--help'], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^dynasyn: \S*unbuilt\/dist\/main\.js does not exist: run `npm run build` first\n$/);
});
