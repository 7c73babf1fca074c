/** CLIP_MODEL at a worker's start: resolved like BACKBONE and loaded once, or the worker refuses to start, naming it. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EnvError } from '@dynasyn/config';
import { writeTinyClip } from '../../dynasyn/src/testing/tiny-clip.js';
import { resolveClipModel } from './clip-model.js';
import { unreachableWorkerEnv } from './testing/unreachable-env.js';
import { startWorkerProcess } from './worker-process.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dynasyn-clip-model-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const store = () => ({
  cacheDir: join(root, 'cache'),
  openStore: () => {
    throw new Error('no s3 in this test');
  },
  runtime: { intraOpNumThreads: 1 },
});

test('unset: no CLIP; a folder as a path or a file:// URL: that folder, after a load', async () => {
  expect(await resolveClipModel({ clipModel: undefined, ...store() })).toBeUndefined();
  const dir = join(root, 'clip');
  writeTinyClip(dir, 'combined');
  expect(await resolveClipModel({ clipModel: dir, ...store() })).toBe(dir);
  expect(await resolveClipModel({ clipModel: pathToFileURL(dir).href, ...store() })).toBe(dir);
});

test('a missing folder, one with no model, or a model onnxruntime cannot load: EnvError naming CLIP_MODEL and the value', async () => {
  const missing = join(root, 'nowhere');
  await expect(resolveClipModel({ clipModel: missing, ...store() })).rejects.toThrow(
    new EnvError([`CLIP_MODEL: ${missing} is not a usable CLIP model: CLIP model folder ${missing} does not exist`]),
  );
  const empty = join(root, 'tokenizer-only');
  writeTinyClip(empty);
  rmSync(join(empty, 'text_model.onnx'));
  await expect(resolveClipModel({ clipModel: empty, ...store() })).rejects.toThrow(
    /^invalid environment: CLIP_MODEL: .*tokenizer-only.*neither text_model\.onnx/,
  );
  const broken = join(root, 'broken');
  writeTinyClip(broken);
  writeFileSync(join(broken, 'vision_model.onnx'), 'not a model');
  await expect(resolveClipModel({ clipModel: broken, ...store() })).rejects.toThrow(/CLIP_MODEL: .*broken.*onnxruntime could not load CLIP model/);
});

test('a sample worker with a bad CLIP_MODEL refuses to start, before it connects to anything', async () => {
  const bad = join(root, 'not-a-clip');
  mkdirSync(bad, { recursive: true });
  const env = unreachableWorkerEnv(root, { CLIP_MODEL: bad });
  expect(env.CLIP_MODEL).toBe(bad);
  await expect(startWorkerProcess('sample', env)).rejects.toThrow(`CLIP_MODEL: ${bad} is not a usable CLIP model`);
});
