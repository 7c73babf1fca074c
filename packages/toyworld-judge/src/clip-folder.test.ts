/**
 * The toy CLIP's folder is what the product's `--clip` takes: ClipModel (packages/dynasyn) loads it, and its
 * embeddings are the ones this package's runtime computes (same tokenizer, mask and preprocessing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer } from '@dynasyn/diffusion';
import { ClipModel, cosine } from '@dynasyn/dynasyn';
import { renderScene, sampleSceneSpec } from '@dynasyn/toyworld';
import { buildClipTrainingNet, clipDims } from './clip-net.js';
import { clipTokenizerFiles, ToyClip, writeClipFolder } from './clip.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'toyworld-clip-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('ClipModel loads the exported folder and embeds as the package runtime does', async () => {
  const files = clipTokenizerFiles('test', 100);
  const d = clipDims(new ClipTokenizer(files).vocabSize, { embed: 16, tokenWidth: 16, textWidth: 16, vision: [8, 8, 16] });
  const out = join(dir, 'clip');
  writeClipFolder(out, d, buildClipTrainingNet(2, d, 'seed').currentWeights(), files);
  const model = await ClipModel.load(out);
  const ours = await ToyClip.load(out);
  expect(model.imageConfig).toMatchObject({ cropHeight: 64, cropWidth: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  const scenes = [0, 1, 2].map((i) => renderScene(sampleSceneSpec(`clip-folder/${i}`), { size: 64 }));
  const captions = scenes.map((s) => s.captions[0]!);
  const [a, b] = [await model.embedTexts(captions), await ours.embedTexts(captions)];
  const [c, e] = [await model.embedImages(scenes.map((s) => ({ width: 64, height: 64, data: s.rgb }))), await ours.embedImages(scenes.map((s) => s.rgb))];
  for (let i = 0; i < 3; i++) {
    expect(cosine(a[i]!, b[i]!)).toBeGreaterThan(0.9999);
    expect(cosine(c[i]!, e[i]!)).toBeGreaterThan(0.9999);
  }
  // different captions and images do embed differently (the towers are not constant)
  expect(cosine(a[0]!, a[1]!)).toBeLessThan(0.9999);
  expect(cosine(c[0]!, c[1]!)).toBeLessThan(0.9999);
  await model.release();
  await ours.release();
});
