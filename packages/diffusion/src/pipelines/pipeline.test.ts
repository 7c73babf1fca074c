import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyBundle } from '../tiny/index.js';
import { GaussianRng } from '../rng.js';
import type { FloatTensor } from '../tensor.js';
import { isDiffusionError } from '../errors.js';
import { DiffusionPipeline } from './pipeline.js';
import { combineGuided, doubleBatch } from './guidance.js';
import { imagesToTensor, type MaskPixels, type RgbPixels } from './images.js';

let dir: string;
let p: DiffusionPipeline;
const STEPS = 4;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-pipeline-'));
  await createTinyBundle(dir, { seed: 1 });
  p = await DiffusionPipeline.create(dir, { intraOpNumThreads: 1 });
});
afterAll(async () => {
  await p?.release();
  fs.rmSync(dir, { recursive: true, force: true });
});

const bytesEqual = (a: RgbPixels, b: RgbPixels) =>
  a.width === b.width && a.height === b.height && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** A smooth test picture at native size (a VAE round trip of it is meaningful). */
function picture(): RgbPixels {
  const n = p.bundle.sampleSize;
  const data = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const i = (y * n + x) * 3;
      data[i] = (x * 2) & 255;
      data[i + 1] = (y * 2) & 255;
      data[i + 2] = 128;
    }
  return { width: n, height: n, data };
}

describe('textToImage', () => {
  test('the same seed gives byte-identical images (every scheduler); another seed a different one', async () => {
    for (const scheduler of ['ddim', 'euler', 'ddpm'] as const) {
      const o = { prompt: 'a photo of a cat', steps: STEPS, guidance: 5, seed: 42, scheduler };
      const [a, b, c] = [await p.textToImage(o), await p.textToImage(o), await p.textToImage({ ...o, seed: 43 })];
      expect(a.images[0]!.width).toBe(p.bundle.sampleSize);
      expect(a.images[0]!.height).toBe(p.bundle.sampleSize);
      expect(bytesEqual(a.images[0]!, b.images[0]!)).toBe(true);
      expect(a.latents.data).toEqual(b.latents.data);
      expect(bytesEqual(a.images[0]!, c.images[0]!)).toBe(false);
      expect(a.seeds).toEqual([42]);
    }
  });

  test('image i of a batch is the image drawn alone with seed + i; progress reports (step, total)', async () => {
    const steps: Array<[number, number]> = [];
    const batch = await p.textToImage({ prompt: 'a dog', steps: STEPS, seed: 7, batch: 2, onProgress: (s, t) => steps.push([s, t]) });
    expect(steps).toEqual([
      [1, STEPS],
      [2, STEPS],
      [3, STEPS],
      [4, STEPS],
    ]);
    expect(batch.seeds).toEqual([7, 8]);
    const second = await p.textToImage({ prompt: 'a dog', steps: STEPS, seed: 8 });
    // batched and single UNet runs may round differently in the last bits; the images agree to a pixel level
    expect(maxAbsDiff(batch.images[1]!.data, second.images[0]!.data)).toBeLessThanOrEqual(2);
    expect(bytesEqual(batch.images[0]!, batch.images[1]!)).toBe(false);
  });

  test("the initial latents are the seed's first GaussianRng draws times initNoiseSigma (documented draw)", async () => {
    // a 1-step DDIM sample, rebuilt by hand from GaussianRng(seed).fill(C*h*w)
    const side = p.bundle.sampleSize / p.bundle.vaeScaleFactor;
    const n = p.bundle.latentChannels * side * side;
    const noise = new GaussianRng(11).fill(n);
    const hidden = await p.encodePrompts(['x'], '', 1);
    const { createScheduler } = await import('../schedulers/index.js');
    const s = createScheduler('ddim', p.bundle.scheduler);
    s.setTimesteps(1);
    const t = s.timesteps[0]!;
    const pred = await p.unet.predict({ dims: [1, p.bundle.latentChannels, side, side], data: s.scaleModelInput(noise, t) }, t, hidden);
    const expected = s.step(pred.noise.data, t, noise);
    const got = await p.textToImage({ prompt: 'x', steps: 1, guidance: 1, seed: 11 });
    expect(got.latents.data).toEqual(expected);
  });

  test('classifier-free guidance at scale 1 equals the conditional prediction (batch layout [uncond; cond])', async () => {
    const side = p.bundle.sampleSize / p.bundle.vaeScaleFactor;
    const x: FloatTensor = { dims: [1, p.bundle.latentChannels, side, side], data: new GaussianRng(5).fill(p.bundle.latentChannels * side * side) };
    const both = await p.encodePrompts(['a cat'], 'blurry', 7.5); // [uncond; cond]
    const condOnly = await p.encodePrompts(['a cat'], 'blurry', 1);
    expect(both.dims[0]).toBe(2);
    expect(condOnly.dims[0]).toBe(1);
    const guided = combineGuided((await p.unet.predict(doubleBatch(x), 600, both)).noise, 1);
    const cond = (await p.unet.predict(x, 600, condOnly)).noise;
    expect(maxAbsDiff(guided.data, cond.data)).toBeLessThan(1e-4);
    const uncond = (await p.unet.predict(x, 600, { dims: condOnly.dims, data: both.data.slice(0, condOnly.data.length) })).noise;
    expect(maxAbsDiff(uncond.data, cond.data)).toBeGreaterThan(1e-3); // the negative prompt matters
    // and guidance 3 extrapolates from uncond through cond
    const g3 = combineGuided((await p.unet.predict(doubleBatch(x), 600, both)).noise, 3);
    const i = 17;
    expect(g3.data[i]).toBeCloseTo(uncond.data[i]! + 3 * (cond.data[i]! - uncond.data[i]!), 4);
  });

  test('with captureAttention: maps of the prompt rows averaged over steps, and the same image', async () => {
    const q = await DiffusionPipeline.create(dir, { intraOpNumThreads: 1, captureAttention: {} });
    try {
      const o = { prompts: ['a cat', 'a dog'], steps: 2, seed: 21, guidance: 4 };
      const [withMaps, plain] = [await q.textToImage(o), await p.textToImage(o)];
      expect(withMaps.latents.data).toEqual(plain.latents.data);
      expect(plain.attention).toBeUndefined();
      const grid = Math.ceil(p.bundle.sampleSize / p.bundle.vaeScaleFactor / 4);
      expect(withMaps.attention!.probs.dims).toEqual([2, grid * grid, 77]);
      const row = withMaps.attention!.probs.data.subarray(77 * (grid * grid + 3), 77 * (grid * grid + 4)); // image 1
      expect(row.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 4);
    } finally {
      await q.release();
    }
  });

  test('bad options are refused with BAD_ARGUMENT naming the option', async () => {
    for (const [o, re] of [
      [{ prompt: 'x', steps: 0 }, /steps/],
      [{ prompt: 'x', guidance: Number.NaN }, /guidance/],
      [{ prompt: 'x', seed: -1 }, /seed/],
      [{ prompt: 'x', scheduler: 'pndm' }, /scheduler/],
      [{ prompts: [] }, /prompts/],
    ] as const) {
      const err = await p.textToImage(o as never).catch((e: unknown) => e);
      expect(isDiffusionError(err, 'BAD_ARGUMENT')).toBe(true);
      expect((err as Error).message).toMatch(re);
    }
  });
});

describe('imageToImage', () => {
  test('strength 0 returns the input through a VAE round trip only', async () => {
    const img = picture();
    const out = await p.imageToImage({ image: img, strength: 0, prompt: 'x', steps: STEPS, seed: 1 });
    const roundTrip = await p.decodeLatents(await p.encodeImages(img, 1));
    expect(bytesEqual(out.images[0]!, roundTrip[0]!)).toBe(true);
  });

  test('higher strength changes the image more; the same seed reproduces it', async () => {
    const img = picture();
    const z0 = await p.encodeImages(img, 1);
    const dist = async (strength: number) =>
      maxAbsDiff((await p.imageToImage({ image: img, strength, prompt: 'x', steps: 10, seed: 3, guidance: 1 })).latents.data, z0.data);
    const [low, high] = [await dist(0.2), await dist(0.9)];
    expect(low).toBeGreaterThan(0);
    expect(high).toBeGreaterThan(low);
    const a = await p.imageToImage({ image: img, strength: 0.5, prompt: 'x', steps: STEPS, seed: 9 });
    const b = await p.imageToImage({ image: img, strength: 0.5, prompt: 'x', steps: STEPS, seed: 9 });
    expect(bytesEqual(a.images[0]!, b.images[0]!)).toBe(true);
  });

  test('an image of the wrong size is refused, pointing at fitToSquare', async () => {
    await expect(p.imageToImage({ image: { width: 8, height: 8, data: new Uint8Array(192) }, prompt: 'x' })).rejects.toThrow(/fitToSquare/);
  });
});

describe('inpaint', () => {
  test('the unmasked region keeps the original latents; the masked region is repainted', async () => {
    const img = picture();
    const n = p.bundle.sampleSize,
      f = p.bundle.vaeScaleFactor;
    const mask: MaskPixels = { width: n, height: n, data: new Uint8Array(n * n) };
    for (let y = 0; y < n / 2; y++) for (let x = 0; x < n / 2; x++) mask.data[y * n + x] = 1; // top-left quarter
    const z0 = await p.encodeImages(img, 1);
    const out = await p.inpaint({ image: img, mask, prompt: 'a cat', steps: STEPS, seed: 4 });
    const side = n / f,
      plane = side * side;
    let keptMax = 0,
      paintedMax = 0;
    for (let c = 0; c < p.bundle.latentChannels; c++)
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) {
          const i = c * plane + y * side + x;
          const d = Math.abs(out.latents.data[i]! - z0.data[i]!);
          if (y < side / 2 && x < side / 2) paintedMax = Math.max(paintedMax, d);
          else keptMax = Math.max(keptMax, d);
        }
    expect(keptMax).toBeLessThan(1e-6);
    expect(paintedMax).toBeGreaterThan(0.1);
    // (pixels are not compared: the tiny VAE's mid-block attention spreads any latent change over the image)
  });
});

test('imagesToTensor maps bytes to [-1, 1] planar (diffusers convention)', () => {
  const t = imagesToTensor([{ width: 1, height: 2, data: Uint8Array.from([0, 255, 51, 102, 153, 204]) }]);
  expect(t.dims).toEqual([1, 3, 2, 1]);
  expect(Array.from(t.data).map((v) => +v.toFixed(3))).toEqual([-1, -0.2, 1, 0.2, -0.6, 0.6]);
});
