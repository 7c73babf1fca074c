/** JUDGE_MODEL at a worker's start: resolved like CLIP_MODEL and loaded once, or the worker refuses to start, naming it. */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EnvError } from '@dynasyn/config';
import { resolveJudgeModel } from './judge-model.js';
import { unreachableWorkerEnv } from './testing/unreachable-env.js';
import { startWorkerProcess } from './worker-process.js';

const JUDGE_DIR = join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'models', 'toyworld-judge');
let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dynasyn-judge-model-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const store = () => ({
  cacheDir: join(root, 'cache'),
  openStore: () => {
    throw new Error('no s3 in this test');
  },
  clipModel: '/some/clip',
});

test('unset: no judge; the committed judge as a path or a file:// URL: that folder, after a load', async () => {
  expect(await resolveJudgeModel({ ...store(), judgeModel: undefined })).toBeUndefined();
  expect(await resolveJudgeModel({ ...store(), judgeModel: undefined, clipModel: undefined })).toBeUndefined();
  expect(await resolveJudgeModel({ ...store(), judgeModel: JUDGE_DIR })).toBe(JUDGE_DIR);
  expect(await resolveJudgeModel({ ...store(), judgeModel: pathToFileURL(JUDGE_DIR).href })).toBe(JUDGE_DIR);
});

test('without CLIP_MODEL, a missing folder, one with no judge.json, or a model onnxruntime cannot load: EnvError naming JUDGE_MODEL', async () => {
  await expect(resolveJudgeModel({ ...store(), judgeModel: JUDGE_DIR, clipModel: undefined })).rejects.toThrow(
    new EnvError([
      `JUDGE_MODEL: ${JUDGE_DIR} is set without CLIP_MODEL: the judge's scores extend the CLIP evaluation, so set CLIP_MODEL too (models/toyworld-clip for the toy world)`,
    ]),
  );
  const missing = join(root, 'nowhere');
  await expect(resolveJudgeModel({ ...store(), judgeModel: missing })).rejects.toThrow(
    new EnvError([`JUDGE_MODEL: ${missing} is not a usable toy-world judge: folder ${missing} does not exist`]),
  );
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await expect(resolveJudgeModel({ ...store(), judgeModel: empty })).rejects.toThrow(/^invalid environment: JUDGE_MODEL: .*empty.*no judge\.json/);
  const broken = join(root, 'broken');
  cpSync(JUDGE_DIR, broken, { recursive: true });
  writeFileSync(join(broken, 'finder.onnx'), 'not a model');
  await expect(resolveJudgeModel({ ...store(), judgeModel: broken })).rejects.toThrow(/JUDGE_MODEL: .*broken is not a usable toy-world judge: .*finder\.onnx/);
});

test('a sample worker with JUDGE_MODEL but no CLIP_MODEL refuses to start, before it connects to anything', async () => {
  const env = unreachableWorkerEnv(root, { JUDGE_MODEL: JUDGE_DIR });
  expect(env.JUDGE_MODEL).toBe(JUDGE_DIR);
  await expect(startWorkerProcess('sample', env)).rejects.toThrow(`JUDGE_MODEL: ${JUDGE_DIR} is set without CLIP_MODEL`);
});
