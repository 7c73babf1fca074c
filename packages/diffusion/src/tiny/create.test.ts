import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadBundle } from '../bundle.js';
import { ClipTokenizer } from '../tokenizer.js';
import { createTinyBundle, TINY_BUNDLE_FACTS, type TinyBundleInfo } from './index.js';
import { normals } from './prng.js';
import { filesUnder } from '../testing/files.js';

let tmp: string;
let bundle: TinyBundleInfo;
let createMs = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'tiny-bundle-'));
  const t0 = performance.now();
  bundle = await createTinyBundle(join(tmp, 'seed0'));
  createMs = performance.now() - t0;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const std = (a: Float32Array): number => {
  let s = 0,
    s2 = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
  }
  const mean = s / a.length;
  return Math.sqrt(s2 / a.length - mean * mean);
};
const allFinite = (a: Float32Array): boolean => a.every((v) => Number.isFinite(v));
const randn = (key: string, dims: number[]) =>
  new ort.Tensor(
    'float32',
    normals(
      `test/${key}`,
      dims.reduce((a, b) => a * b, 1),
      1,
    ),
    dims,
  );

describe('createTinyBundle', () => {
  it('writes the optimum SD layout in a few seconds', () => {
    console.log(`createTinyBundle: ${createMs.toFixed(0)} ms`);
    const names = [...filesUnder(bundle.dir).keys()].sort();
    expect(names).toEqual([
      'model_index.json',
      'scheduler/scheduler_config.json',
      'text_encoder/config.json',
      'text_encoder/model.onnx',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'tokenizer/vocab.json',
      'unet/config.json',
      'unet/model.onnx',
      'vae_decoder/config.json',
      'vae_decoder/model.onnx',
      'vae_encoder/config.json',
      'vae_encoder/model.onnx',
    ]);
    expect(statSync(join(bundle.dir, 'unet/model.onnx')).size).toBeLessThan(16 * 2 ** 20);
    const sched = JSON.parse(readFileSync(join(bundle.dir, 'scheduler/scheduler_config.json'), 'utf8'));
    expect(sched).toMatchObject({
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      timestep_spacing: 'leading',
      steps_offset: 1,
      clip_sample: false,
      set_alpha_to_one: false,
    });
  });

  it('loads with loadBundle, with the facts TINY_BUNDLE_FACTS states', () => {
    const b = loadBundle(bundle.dir, { inspectModels: 'always' });
    expect(b).toMatchObject({
      sampleSize: TINY_BUNDLE_FACTS.sampleSize,
      vaeScaleFactor: TINY_BUNDLE_FACTS.vaeScaleFactor,
      latentChannels: TINY_BUNDLE_FACTS.latentChannels,
      textEmbedDim: TINY_BUNDLE_FACTS.textEmbedDim,
      vaeScalingFactor: TINY_BUNDLE_FACTS.vaeScalingFactor,
      maxTokens: TINY_BUNDLE_FACTS.maxTokens,
    });
    expect(b.scheduler).toMatchObject({ predictionType: 'epsilon', timestepSpacing: 'leading', stepsOffset: 1, betaSchedule: 'scaled_linear' });
    expect(b.sampleSize).toBe(128);
    expect(b.vaeScaleFactor).toBe(4);
  });

  it('sizes the token embedding to the tokenizer, whose end token has the largest id (CLIP pooling)', () => {
    const tok = ClipTokenizer.fromDir(join(bundle.dir, 'tokenizer'));
    const vocab = JSON.parse(readFileSync(join(bundle.dir, 'tokenizer/vocab.json'), 'utf8')) as Record<string, number>;
    expect(Object.keys(vocab).length).toBe(bundle.vocabSize);
    expect(vocab['<|endoftext|>']).toBe(bundle.vocabSize - 1);
    expect(tok).toBeDefined();
    const config = JSON.parse(readFileSync(join(bundle.dir, 'text_encoder/config.json'), 'utf8'));
    expect(config).toMatchObject({ vocab_size: bundle.vocabSize, hidden_size: 64, max_position_embeddings: 77 });
  });

  it('is byte-identical for the same seed and has different weights for another seed', async () => {
    const again = filesUnder((await createTinyBundle(join(tmp, 'seed0-again'), { seed: 0 })).dir);
    const first = filesUnder(bundle.dir);
    expect([...again.keys()].sort()).toEqual([...first.keys()].sort());
    for (const [name, bytes] of first) expect({ name, same: bytes.equals(again.get(name)!) }).toEqual({ name, same: true });

    const other = filesUnder((await createTinyBundle(join(tmp, 'seed1'), { seed: 1 })).dir);
    for (const m of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder']) {
      const a = first.get(`${m}/model.onnx`)!,
        b = other.get(`${m}/model.onnx`)!;
      expect(a.length).toBe(b.length); // same graph, other weights
      expect(a.equals(b)).toBe(false);
    }
    expect(other.get('unet/config.json')!.equals(first.get('unet/config.json')!)).toBe(true);
  });

  it('rejects a seed that is not an unsigned 32-bit integer', async () => {
    await expect(createTinyBundle(join(tmp, 'bad'), { seed: -1 })).rejects.toThrow(/seed -1/);
    await expect(createTinyBundle(join(tmp, 'bad'), { seed: 1.5 })).rejects.toThrow(/seed 1.5/);
  });
});

describe('tiny bundle models in onnxruntime', () => {
  const session = (sub: string) => ort.InferenceSession.create(join(bundle.dir, sub, 'model.onnx'), { intraOpNumThreads: 1 });

  it.each([1, 2])('text encoder, batch %i: last_hidden_state [B,77,64] and the pooled end-token state', async (b) => {
    const s = await session('text_encoder');
    const ids = new BigInt64Array(b * 77);
    const eosAt = [4, 9];
    for (let i = 0; i < b; i++) {
      ids[i * 77] = BigInt(bundle.vocabSize - 2);
      for (let j = 1; j < 77; j++) ids[i * 77 + j] = j < eosAt[i]! ? BigInt(300 + 7 * j + i) : BigInt(bundle.vocabSize - 1);
    }
    const out = await s.run({ input_ids: new ort.Tensor('int64', ids, [b, 77]) });
    const hidden = out.last_hidden_state!,
      pooled = out.pooler_output!;
    expect(hidden.dims).toEqual([b, 77, 64]);
    expect(pooled.dims).toEqual([b, 64]);
    const h = hidden.data as Float32Array,
      p = pooled.data as Float32Array;
    expect(allFinite(h) && allFinite(p)).toBe(true);
    expect(std(h)).toBeGreaterThan(0.1);
    for (let i = 0; i < b; i++) {
      // pooled = hidden state at the first end token
      const row = h.subarray((i * 77 + eosAt[i]!) * 64, (i * 77 + eosAt[i]! + 1) * 64);
      expect(Array.from(p.subarray(i * 64, (i + 1) * 64))).toEqual(Array.from(row));
    }
    // causal: a token's state depends only on the tokens before it
    if (b === 2) {
      const ids2 = ids.slice(0, 77);
      ids2[eosAt[0]! + 3] = 5n; // after the end token: the positions before must not change
      const out2 = await s.run({ input_ids: new ort.Tensor('int64', ids2, [1, 77]) });
      const h2 = out2.last_hidden_state!.data as Float32Array;
      expect(Array.from(h2.subarray(0, (eosAt[0]! + 3) * 64))).toEqual(Array.from(h.subarray(0, (eosAt[0]! + 3) * 64)));
      expect(Array.from(h2.subarray((eosAt[0]! + 3) * 64, 77 * 64))).not.toEqual(Array.from(h.subarray((eosAt[0]! + 3) * 64, 77 * 64)));
    }
  });

  it.each([1, 2])('unet, batch %i: out_sample [B,4,32,32], O(1) for N(0,1) inputs, timestep and text matter', async (b) => {
    const s = await session('unet');
    const sample = randn(`sample${b}`, [b, 4, 32, 32]);
    const context = randn(`ctx${b}`, [b, 77, 64]);
    const ts = (t: bigint) => new ort.Tensor('int64', new BigInt64Array(b).fill(t), [b]);
    const run = async (t: bigint, ctx = context) => (await s.run({ sample, timestep: ts(t), encoder_hidden_states: ctx })).out_sample!;
    const out = await run(500n);
    expect(out.dims).toEqual([b, 4, 32, 32]);
    const y = out.data as Float32Array;
    expect(allFinite(y)).toBe(true);
    expect(std(y)).toBeGreaterThan(0.1);
    expect(std(y)).toBeLessThan(10);
    expect(Array.from((await run(10n)).data as Float32Array)).not.toEqual(Array.from(y));
    expect(Array.from((await run(500n, randn(`ctx-other${b}`, [b, 77, 64]))).data as Float32Array)).not.toEqual(Array.from(y));
  });

  it('computes each row of a batch as a batch of one (reshapes keep the batch apart)', async () => {
    const s = await session('unet');
    const one = async (i: number) =>
      (
        await s.run({
          sample: randn(`row-sample${i}`, [1, 4, 32, 32]),
          timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(100 + 400 * i)), [1]),
          encoder_hidden_states: randn(`row-ctx${i}`, [1, 77, 64]),
        })
      ).out_sample!.data as Float32Array;
    const cat = (a: ort.Tensor, b: ort.Tensor) =>
      new ort.Tensor('float32', Float32Array.of(...(a.data as Float32Array), ...(b.data as Float32Array)), [2, ...a.dims.slice(1)]);
    const both = (
      await s.run({
        sample: cat(randn('row-sample0', [1, 4, 32, 32]), randn('row-sample1', [1, 4, 32, 32])),
        timestep: new ort.Tensor('int64', BigInt64Array.of(100n, 500n), [2]),
        encoder_hidden_states: cat(randn('row-ctx0', [1, 77, 64]), randn('row-ctx1', [1, 77, 64])),
      })
    ).out_sample!.data as Float32Array;
    const rows = [await one(0), await one(1)];
    const n = 4 * 32 * 32;
    for (let i = 0; i < 2; i++) {
      const r = rows[i]!;
      const maxErr = r.reduce((m, v, j) => Math.max(m, Math.abs(v - both[i * n + j]!)), 0);
      expect(maxErr).toBeLessThan(1e-4);
    }
  });

  it.each([1, 2])('vae encoder and decoder, batch %i: [B,3,128,128] <-> [B,8|4,32,32], O(1) values', async (b) => {
    const enc = await (await session('vae_encoder')).run({ sample: randn(`img${b}`, [b, 3, 128, 128]) });
    const moments = enc.latent_sample!;
    expect(moments.dims).toEqual([b, 8, 32, 32]);
    const dec = await (await session('vae_decoder')).run({ latent_sample: randn(`lat${b}`, [b, 4, 32, 32]) });
    const image = dec.sample!;
    expect(image.dims).toEqual([b, 3, 128, 128]);
    for (const t of [moments, image]) {
      const v = t.data as Float32Array;
      expect(allFinite(v)).toBe(true);
      expect(std(v)).toBeGreaterThan(0.1);
      expect(std(v)).toBeLessThan(10);
    }
  });
});
