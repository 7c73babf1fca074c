/**
 * The `toyworld` binary as users run it: a subprocess on the package's bin, which loads the built package
 * (dist/, built once here with the package's own tsconfig, as `npm test` does before jest).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { DatasetEntry } from './dataset.js';
import { renderScene } from './render.js';
import { datasetSceneSpec } from './sample.js';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(pkg, 'bin', 'toyworld.js');
let tmp: string;

beforeAll(() => {
  const tsc = spawnSync(process.execPath, [path.join(pkg, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(pkg, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  if (!fs.existsSync(path.join(pkg, 'dist', 'cli.js'))) throw new Error(`building the package did not produce dist/cli.js:\n${tsc.stdout}${tsc.stderr}`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'toyworld-cli-'));
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const toyworld = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

/** Raw pixels of a PNG, decoded by sharp (an independent decoder). */
async function pixels(file: string) {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), ...info };
}

describe('toyworld CLI', () => {
  it('render writes image.png, mask-<i>.png, labels.json, captions.txt, spec.json that match renderScene', async () => {
    const spec = datasetSceneSpec('cli', 1, { subjects: 2 });
    const specFile = path.join(tmp, 'scene.json');
    fs.writeFileSync(specFile, JSON.stringify(spec));
    const out = path.join(tmp, 'one');
    const r = toyworld('render', '--spec', specFile, '--out', out, '--size', '96');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['captions.txt', 'image.png', 'labels.json', 'mask-0.png', 'mask-1.png', 'spec.json']);
    const expected = renderScene(spec, { size: 96 });
    const image = await pixels(path.join(out, 'image.png'));
    expect([image.width, image.height, image.channels]).toEqual([96, 96, 3]);
    expect(Buffer.from(image.data).equals(Buffer.from(expected.rgb))).toBe(true);
    for (let k = 0; k < 2; k++) {
      const file = path.join(out, `mask-${k}.png`);
      expect((await sharp(file).metadata()).channels).toBe(1); // a grayscale PNG
      const mask = await sharp(file).extractChannel(0).raw().toBuffer();
      expect(Buffer.from(mask).equals(Buffer.from(expected.masks[k]!.map((v) => v * 255)))).toBe(true);
    }
    expect(JSON.parse(fs.readFileSync(path.join(out, 'labels.json'), 'utf8'))).toEqual(expected.labels);
    expect(fs.readFileSync(path.join(out, 'captions.txt'), 'utf8').trim().split('\n')).toEqual(expected.captions);
  });

  it('render names the bad field of a bad spec and exits 1', () => {
    const specFile = path.join(tmp, 'bad.json');
    fs.writeFileSync(
      specFile,
      JSON.stringify({
        subjects: [{ class: 'unicorn', colour: 'red', pattern: 'plain', accessory: 'none', action: 'standing' }],
        context: 'beach',
        style: 'shaded',
      }),
    );
    const r = toyworld('render', '--spec', specFile, '--out', path.join(tmp, 'bad'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/subjects\.0\.class: expected one of "cat"/);
  });

  it('dataset writes images/, masks/, index.jsonl (one line per scene) and dataset.json, reproducibly', async () => {
    const out = path.join(tmp, 'ds');
    const r = toyworld('dataset', '--count', '12', '--seed', '3', '--out', out);
    expect(r.status).toBe(0);
    const lines = fs.readFileSync(path.join(out, 'index.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(12);
    const entries = lines.map((l) => JSON.parse(l) as DatasetEntry);
    for (const [i, e] of entries.entries()) {
      expect(e.id).toBe(String(i).padStart(6, '0'));
      expect(e.spec).toEqual(datasetSceneSpec('3', i, { heldOut: 'exclude' }));
      expect(e.masks).toHaveLength(e.spec.subjects.length);
      expect(e.labels.subjects.map((s) => s.class)).toEqual(e.spec.subjects.map((s) => s.class));
      expect(e.captions.length).toBeGreaterThan(1);
      for (const f of [e.image, ...e.masks]) expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const first = await pixels(path.join(out, entries[0]!.image));
    expect(Buffer.from(first.data).equals(Buffer.from(renderScene(entries[0]!.spec).rgb))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8'))).toMatchObject({
      format: 1,
      count: 12,
      seed: '3',
      size: 64,
      heldOut: 'exclude',
    });
    // the same seed writes the same bytes
    const again = path.join(tmp, 'ds2');
    expect(toyworld('dataset', '--count', '12', '--seed', '3', '--out', again).status).toBe(0);
    expect(fs.readFileSync(path.join(again, 'index.jsonl'))).toEqual(fs.readFileSync(path.join(out, 'index.jsonl')));
    expect(fs.readFileSync(path.join(again, entries[5]!.image))).toEqual(fs.readFileSync(path.join(out, entries[5]!.image)));
  });

  it('prints a failure with its cause in a few lines, and whole with stacks on --debug', () => {
    const missing = path.join(tmp, 'no-such-spec.json');
    const r = toyworld('render', '--spec', missing, '--out', path.join(tmp, 'never'));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      [
        `toyworld: cannot read --spec ${missing}: ENOENT: no such file or directory, open '${missing}' [BAD_ARGUMENT]`,
        `  caused by: Error [ENOENT]: ENOENT: no such file or directory, open '${missing}'`,
        'run with --debug for stack traces',
        '',
      ].join('\n'),
    );
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
    const debug = toyworld('render', '--spec', missing, '--out', path.join(tmp, 'never'), '--debug');
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(/^toyworld: ToyworldError \[BAD_ARGUMENT\]: cannot read --spec .*\n\s+at /);
    expect(debug.stderr).toMatch(/\n\s+caused by: Error \[ENOENT\]: .*\n\s+at /);
  });

  it('refuses a bad count', () => {
    const r = toyworld('dataset', '--count', '0', '--seed', '1', '--out', path.join(tmp, 'x'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--count <n>. argument .0. is invalid. expected an integer from 1 to/);
  });
});
