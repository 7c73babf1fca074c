/** Adapters folded into weights (sampling) compute what the training graph's adapters compute (graph/ applyAdapters). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle, GaussianRng, loadBundle, ClipTextEncoder, Unet, type ModelBundle } from '@dynasyn/diffusion';
import { loadModel, saveModel, type HostTensor } from '@dynasyn/ort-training';
import { addTrainableAdapters, applyAdapters } from './graph/index.js';
import { bundleWithAdapters } from './merge-adapters.js';
import type { AdapterSpec } from './types.js';

let dir: string;
let bundle: ModelBundle;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-merge-'));
  await createTinyBundle(path.join(dir, 'tiny'), { seed: 3 });
  bundle = loadBundle(path.join(dir, 'tiny'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Adapters on every projection of both models, with non-zero B (training's start has B = 0, a no-op). */
function randomAdapters(): { specs: AdapterSpec[]; values: Map<string, HostTensor> } {
  const rng = new GaussianRng(7);
  const specs: AdapterSpec[] = [];
  const values = new Map<string, HostTensor>();
  for (const [which, file] of [
    ['unet', bundle.unetPath],
    ['text_encoder', bundle.textEncoderPath],
  ] as const) {
    const adapted = addTrainableAdapters(loadModel(file), which, { rank: 4, alpha: 8 });
    specs.push(...adapted.specs);
    for (const [name, v] of adapted.startValues) values.set(name, { ...v, data: Float32Array.from(rng.fill(v.data.length), (x) => 0.2 * x) });
  }
  return { specs, values };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

test('merged UNet and text encoder equal the models with adapter nodes, and differ from the base models', async () => {
  const { specs, values } = randomAdapters();
  expect(specs.some((s) => s.model === 'unet') && specs.some((s) => s.model === 'text_encoder')).toBe(true);
  const merged = bundleWithAdapters(bundle, { adapters: values, adapterSpec: specs }, path.join(dir, 'merged'));
  const withNodes: ModelBundle = { ...bundle };
  for (const [which, key] of [
    ['unet', 'unetPath'],
    ['text_encoder', 'textEncoderPath'],
  ] as const) {
    const file = path.join(dir, 'nodes', which, 'model.onnx');
    saveModel(applyAdapters(loadModel(bundle[key]), specs, values, which), file);
    withNodes[key] = file;
  }
  const ids = [Array.from({ length: 77 }, (_, i) => (i < 6 ? 10 + i : 0))];
  const side = bundle.sampleSize / bundle.vaeScaleFactor;
  const latents = { dims: [1, 4, side, side], data: new GaussianRng(1).fill(4 * side * side) };
  const run = async (b: ModelBundle) => {
    const text = await ClipTextEncoder.create(b, { intraOpNumThreads: 1 });
    const unet = await Unet.create(b, { intraOpNumThreads: 1 });
    try {
      const hidden = await text.encode(ids);
      return { hidden: hidden.data, noise: (await unet.predict(latents, 400, hidden)).noise.data };
    } finally {
      await text.release();
      await unet.release();
    }
  };
  const [m, n, base] = [await run(merged), await run(withNodes), await run(bundle)];
  expect(maxAbsDiff(m.hidden, n.hidden)).toBeLessThan(1e-4);
  expect(maxAbsDiff(m.noise, n.noise)).toBeLessThan(1e-4);
  expect(maxAbsDiff(m.hidden, base.hidden)).toBeGreaterThan(1e-2);
  expect(maxAbsDiff(m.noise, base.noise)).toBeGreaterThan(1e-2);
});
