import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataType, fromNumbers, loadModel, saveModel, type Node } from '@dynasyn/ort-training';
import { createTinyBundle } from '../tiny/index.js';
import { loadBundle } from '../bundle.js';
import { ClipTokenizer } from '../tokenizer.js';
import { placeholderStartValues } from '../surgery/placeholders.js';
import { GaussianRng } from '../rng.js';
import type { ModelBundle } from '../types.js';
import type { FloatTensor } from '../tensor.js';
import { retypeIo } from '../testing/retype-io.js';
import { ClipTextEncoder } from './text-encoder.js';
import { Unet } from './unet.js';
import { VaeDecoder, VaeEncoder } from './vae.js';
import { isDiffusionError } from '../errors.js';

let dir: string;
let bundle: ModelBundle;
let tokenizer: ClipTokenizer;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dynasyn-runtime-'));
  await createTinyBundle(path.join(dir, 'bundle'), { seed: 3 });
  bundle = loadBundle(path.join(dir, 'bundle'));
  tokenizer = ClipTokenizer.fromDir(bundle.tokenizerDir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const maxRelErr = (a: Float32Array, b: Float32Array): number => {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
};
const randn = (dims: number[], seed: number): FloatTensor => ({ dims, data: new GaussianRng(seed).fill(dims.reduce((a, b) => a * b, 1)) });
/** A bundle whose `key` model is replaced by `file`. */
const withModel = (key: 'textEncoderPath' | 'unetPath' | 'vaeEncoderPath', file: string): ModelBundle => ({ ...bundle, [key]: file });
const rows = (...texts: string[]) => texts.map((t) => tokenizer.encodePadded(t, bundle.maxTokens));

describe('ClipTextEncoder', () => {
  test('encodes [B,77] ids to [B,77,D]; int32 and int64 id inputs give the same states', async () => {
    const te = await ClipTextEncoder.create(bundle);
    const ids = rows('a photo of a cat', 'a dog');
    const out = await te.encode(ids);
    expect(out.dims).toEqual([2, 77, bundle.textEmbedDim]);
    const declared = loadModel(bundle.textEncoderPath).graph.inputs.find((v) => v.name === 'input_ids')!.dtype;
    const other = declared === DataType.INT64 ? DataType.INT32 : DataType.INT64;
    const file = path.join(dir, 'te-retyped', 'model.onnx');
    retypeIo(bundle.textEncoderPath, file, { inputs: { input_ids: other } });
    const te2 = await ClipTextEncoder.create(withModel('textEncoderPath', file));
    expect((await te2.encode(ids)).data).toEqual(out.data);
    await Promise.all([te.release(), te2.release()]);
  });

  test('refuses rows that are not 77 ids long, naming the fix', async () => {
    const te = await ClipTextEncoder.create(bundle);
    await expect(te.encode([[1, 2, 3]])).rejects.toThrow(/77.*encodePadded/);
    await te.release();
  });

  test('with placeholders: a placeholder row equal to a word embedding encodes like that word; other prompts are unchanged', async () => {
    const tok = ClipTokenizer.fromDir(bundle.tokenizerDir);
    const base = tok.size;
    const [asset0] = tok.addTokens(['<asset0>']);
    const catId = tok.firstSubTokenId('cat');
    const start = placeholderStartValues(loadModel(bundle.textEncoderPath), [catId]);
    const plain = await ClipTextEncoder.create(bundle);
    const te = await ClipTextEncoder.create(bundle, { placeholders: 1, baseVocabSize: base });
    expect(te.placeholderCount).toBe(1);
    const emb = new Float32Array(start.data as Float32Array);
    const withPlaceholder = await te.encode([tok.encodePadded('a photo of <asset0>')], emb);
    const withWord = await plain.encode([tok.encodePadded('a photo of cat')]);
    expect(tok.encodePadded('a photo of <asset0>')).toContain(asset0);
    expect(maxRelErr(withPlaceholder.data, withWord.data)).toBeLessThan(1e-6);
    // another row (not a constant shift: the first LayerNorm removes those) changes the states; prompts without it are untouched
    const moved = await te.encode(
      [tok.encodePadded('a photo of <asset0>')],
      emb.map((v, i) => v + 0.5 * Math.sin(i)),
    );
    expect(maxRelErr(moved.data, withWord.data)).toBeGreaterThan(1e-3);
    expect((await te.encode([tok.encodePadded('a dog')], emb)).data).toEqual((await plain.encode([tok.encodePadded('a dog')])).data);
    await expect(te.encode([tok.encodePadded('a dog')])).rejects.toThrow(/placeholderEmbeddings/);
    await Promise.all([te.release(), plain.release()]);
  });
});

describe('Unet', () => {
  const side = () => bundle.sampleSize / bundle.vaeScaleFactor;

  test('a batch of 2 predicts what each row predicts alone (per-row timesteps)', async () => {
    const unet = await Unet.create(bundle);
    const x = randn([2, bundle.latentChannels, side(), side()], 1);
    const h = randn([2, 77, bundle.textEmbedDim], 2);
    const both = await unet.predict(x, [10, 700], h);
    const half = x.data.length / 2,
      hh = h.data.length / 2;
    const r0 = await unet.predict({ dims: [1, ...x.dims.slice(1)], data: x.data.slice(0, half) }, 10, {
      dims: [1, 77, bundle.textEmbedDim],
      data: h.data.slice(0, hh),
    });
    const r1 = await unet.predict({ dims: [1, ...x.dims.slice(1)], data: x.data.slice(half) }, 700, {
      dims: [1, 77, bundle.textEmbedDim],
      data: h.data.slice(hh),
    });
    expect(both.noise.dims).toEqual(x.dims);
    expect(maxRelErr(both.noise.data.slice(0, half), r0.noise.data)).toBeLessThan(1e-5);
    expect(maxRelErr(both.noise.data.slice(half), r1.noise.data)).toBeLessThan(1e-5);
    expect(maxRelErr(r0.noise.data, r1.noise.data)).toBeGreaterThan(1e-3); // the timestep matters
    await unet.release();
  });

  test('int64-timestep models see fractional (Euler) timesteps rounded; float-timestep models get them as is', async () => {
    const unet = await Unet.create(bundle);
    expect(unet.timestepType).toBe('int64');
    const x = randn([1, bundle.latentChannels, side(), side()], 3);
    const h = randn([1, 77, bundle.textEmbedDim], 4);
    expect((await unet.predict(x, 500.6, h)).noise.data).toEqual((await unet.predict(x, 501, h)).noise.data);
    const file = path.join(dir, 'unet-float-t', 'model.onnx');
    retypeIo(bundle.unetPath, file, { inputs: { timestep: DataType.FLOAT } });
    const floatT = await Unet.create(withModel('unetPath', file));
    expect(floatT.timestepType).toBe('float32');
    // inside, the Cast to int64 truncates: 500.6 reached the model unrounded
    expect((await floatT.predict(x, 500.6, h)).noise.data).toEqual((await unet.predict(x, 500, h)).noise.data);
    await Promise.all([unet.release(), floatT.release()]);
  });

  test('an fp16-I/O UNet takes and returns float32 through float16 tensors', async () => {
    const file = path.join(dir, 'unet-fp16', 'model.onnx');
    retypeIo(bundle.unetPath, file, {
      inputs: { sample: DataType.FLOAT16, encoder_hidden_states: DataType.FLOAT16 },
      outputs: { out_sample: DataType.FLOAT16 },
    });
    const [fp32, fp16] = await Promise.all([Unet.create(bundle), Unet.create(withModel('unetPath', file))]);
    const x = randn([1, bundle.latentChannels, side(), side()], 5);
    const h = randn([1, 77, bundle.textEmbedDim], 6);
    const a = await fp32.predict(x, 300, h),
      b = await fp16.predict(x, 300, h);
    expect(b.noise.data).toBeInstanceOf(Float32Array);
    expect(maxRelErr(b.noise.data, a.noise.data)).toBeLessThan(5e-3); // half precision at the boundary only
    expect(maxRelErr(b.noise.data, a.noise.data)).toBeGreaterThan(0);
    await Promise.all([fp32.release(), fp16.release()]);
  });

  test('with attention capture: maps [B, h*w, 77] at latent/4 that sum to 1 per cell; the noise is unchanged', async () => {
    const [plain, capture] = await Promise.all([Unet.create(bundle), Unet.create(bundle, { captureAttention: {} })]);
    const x = randn([2, bundle.latentChannels, side(), side()], 10);
    const h = randn([2, 77, bundle.textEmbedDim], 11);
    const a = await capture.predict(x, [100, 900], h);
    expect(a.noise.data).toEqual((await plain.predict(x, [100, 900], h)).noise.data);
    const grid = Math.ceil(side() / 4);
    expect(a.attention).toMatchObject({ height: grid, width: grid });
    expect(a.attention!.probs.dims).toEqual([2, grid * grid, 77]);
    for (const cell of [0, grid * grid + 5]) {
      const row = a.attention!.probs.data.subarray(cell * 77, cell * 77 + 77);
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    }
    expect((await plain.predict(x, 100, h)).attention).toBeUndefined();
    await Promise.all([plain.release(), capture.release()]);
  });

  test('a model without the expected inputs is refused with BAD_MODEL naming what it has', async () => {
    const err = await Unet.create(withModel('unetPath', bundle.textEncoderPath)).catch((e: unknown) => e);
    expect(isDiffusionError(err, 'BAD_MODEL')).toBe(true);
    expect((err as Error).message).toMatch(/input_ids/);
  });
});

describe('VAE', () => {
  test('encode applies the scaling factor and decode removes it: a round trip stays close to the image', async () => {
    const enc = await VaeEncoder.create(bundle),
      dec = await VaeDecoder.create(bundle);
    const n = bundle.sampleSize;
    const img = randn([1, 3, n, n], 7);
    for (let i = 0; i < img.data.length; i++) img.data[i] = Math.tanh(img.data[i]!);
    const z = await enc.encode(img);
    const s = n / bundle.vaeScaleFactor;
    expect(z.dims).toEqual([1, bundle.latentChannels, s, s]);
    const back = await dec.decode(z);
    expect(back.dims).toEqual([1, 3, n, n]);
    // scaling is inside: decoding z/scale*scale equals decoding z; feeding an unscaled latent changes the image
    const unscaled = { dims: z.dims, data: z.data.map((v) => v / bundle.vaeScalingFactor) };
    expect(maxRelErr((await dec.decode(unscaled)).data, back.data)).toBeGreaterThan(1e-3);
    await Promise.all([enc.release(), dec.release()]);
  });

  test('an 8-channel (mean|logvar) encoder: the mean by default, mean + std*eps when sampling', async () => {
    const enc = await VaeEncoder.create(bundle);
    const n = bundle.sampleSize;
    const img = randn([1, 3, n, n], 8);
    const mean = await enc.encode(img);
    expect((await enc.encode(img)).data).toEqual(mean.data);
    const sampled = await enc.encode(img, { sample: (k) => new GaussianRng(9).fill(k) });
    expect(sampled.dims).toEqual(mean.dims);
    expect(maxRelErr(sampled.data, mean.data)).toBeGreaterThan(0);
    await enc.release();
  });

  test('an encoder exported to sample (RandomNormalLike, as some optimum versions write it) gives the posterior mean, the same every run', async () => {
    // latent_sample = mean + exp(logvar / 2) * RandomNormalLike(mean), on the tiny encoder's mean|logvar output
    const model = loadModel(bundle.vaeEncoderPath);
    const g = model.graph;
    const moments = 'moments'; // optimum names the sampled output latent_sample: the mean|logvar tensor is renamed
    for (const n of g.nodes) n.outputs = n.outputs.map((o) => (o === g.outputs[0]!.name ? moments : o));
    const C = bundle.latentChannels;
    const add = (opType: string, inputs: string[], attributes: Node['attributes'] = []) =>
      g.addNode({ name: `sample/${opType}_${g.nodes.length}`, opType, domain: '', inputs, outputs: [`sample/${opType}_${g.nodes.length}_out`], attributes })
        .outputs[0]!;
    const slice = (from: number, to: number) =>
      add('Slice', [
        moments,
        g.addConstant('s', fromNumbers(DataType.INT64, [1], [from])),
        g.addConstant('e', fromNumbers(DataType.INT64, [1], [to])),
        g.addConstant('a', fromNumbers(DataType.INT64, [1], [1])),
      ]);
    const mean = slice(0, C),
      logvar = slice(C, 2 * C);
    const std = add('Exp', [add('Mul', [logvar, g.addConstant('half', fromNumbers(DataType.FLOAT, [], [0.5]))])]);
    const eps = add('RandomNormalLike', [mean]);
    g.addNode({ name: 'sample/out', opType: 'Add', domain: '', inputs: [mean, add('Mul', [std, eps])], outputs: ['latent_sample'], attributes: [] });
    g.outputs = [{ name: 'latent_sample', dtype: DataType.FLOAT, shape: [null, C, null, null] }];
    const file = path.join(dir, 'vae-sampling', 'model.onnx');
    saveModel(model, file);

    const img = randn([1, 3, bundle.sampleSize, bundle.sampleSize], 8);
    const meanOnly = await VaeEncoder.create(bundle);
    const sampling = await VaeEncoder.create(withModel('vaeEncoderPath', file));
    const [a, b, want] = [await sampling.encode(img), await sampling.encode(img), await meanOnly.encode(img)];
    expect(a.dims).toEqual([1, C, bundle.sampleSize / bundle.vaeScaleFactor, bundle.sampleSize / bundle.vaeScaleFactor]);
    expect(a.data).toEqual(b.data);
    expect(maxRelErr(a.data, want.data)).toBeLessThan(1e-6);
    await Promise.all([meanOnly.release(), sampling.release()]);
  });
});
