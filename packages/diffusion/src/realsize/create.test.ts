import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, floatToHalf, isExternal, loadModel, numel, type OnnxModel } from '@dynasyn/ort-training';
import { loadBundle } from '../bundle.js';
import { findCrossAttentionLayers } from '../surgery/attention-layers.js';
import { findTokenEmbedding } from '../surgery/placeholders.js';
import { ClipTokenizer } from '../tokenizer.js';
import { tinyTokenizerFiles } from '../tokenizer-files.js';
import { normals } from '../tiny/prng.js';
import {
  createSdBundle,
  SD21_PRESETS,
  textEncoderParameterCount,
  toyworldBundleConfig,
  unetParameterCount,
  vaeParameterCounts,
  type SdBundleConfig,
  type SdBundleInfo,
} from './index.js';
import { partsOverProtobufLimit } from './create.js';
import { checkSdConfig } from './config.js';
import { filesUnder } from '../testing/files.js';

/** SD 2.1's structure (4 levels, DownBlock2D last, 3-resnet up blocks, mid transformer) at tiny widths. */
function small(preset: SdBundleConfig, sampleSize = 128): SdBundleConfig {
  return {
    ...preset,
    sampleSize,
    unet: { ...preset.unet, blockOutChannels: [32, 64, 64, 64], attentionHeads: [1, 2, 2, 2], normGroups: 8, timeEmbedDim: 128 },
    textEncoder: { ...preset.textEncoder, layers: 2, hiddenSize: 64, heads: 2, intermediateSize: 256 },
    vae: { ...preset.vae, blockOutChannels: [16, 32, 32, 32], layersPerBlock: 1, normGroups: 8 },
  };
}

let tmp: string;
let bundle: SdBundleInfo;
const SMALL = small(SD21_PRESETS['sd21-base']);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sd-bundle-'));
  bundle = await createSdBundle(join(tmp, 'base'), { config: SMALL, externalData: ['unet'] }); // as the real fp32 UNet
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const floatParameters = (m: OnnxModel) =>
  [...m.graph.initializers.values()].filter((i) => i.dtype === DataType.FLOAT || i.dtype === DataType.FLOAT16).reduce((n, i) => n + numel(i.dims), 0);
const json = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
const randn = (key: string, dims: number[]) => new ort.Tensor('float32', normals(`test/${key}`, numel(dims), 1), dims);
const session = (dir: string, sub: string) => ort.InferenceSession.create(join(dir, sub, 'model.onnx'), { intraOpNumThreads: 1 });
const std = (a: Float32Array) => {
  let s = 0,
    s2 = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
  }
  return Math.sqrt(s2 / a.length - (s / a.length) ** 2);
};

describe('SD 2.1 sizes', () => {
  it("the presets have SD 2.1's parameter counts (computed from the config)", () => {
    for (const preset of Object.values(SD21_PRESETS)) {
      expect(unetParameterCount(preset)).toBe(865_910_724);
      expect(textEncoderParameterCount(preset)).toBe(340_387_840); // OpenCLIP ViT-H text tower, 23 layers, as CLIPTextModel
      expect(vaeParameterCounts(preset)).toEqual({ encoder: 34_163_664, decoder: 49_490_199 }); // 83,653,863 in all
    }
  });

  it("the toy-world backbone's config builds, with the trained bundle's sizes (models/toyworld's float initializers)", () => {
    const toy = toyworldBundleConfig(1163); // the committed bundle's vocabulary
    expect(() => checkSdConfig(toy)).not.toThrow();
    expect(toy.unet.attentionHeads).toEqual([4, 4, 4]);
    expect(unetParameterCount(toy)).toBe(5_925_124);
    expect(textEncoderParameterCount(toy)).toBe(753_792);
    expect(vaeParameterCounts(toy)).toEqual({ encoder: 258_784, decoder: 423_127 });
  });

  it("only the fp32 UNet is over protobuf's 2 GiB, so only it gets external data by default (optimum's rule)", () => {
    expect(partsOverProtobufLimit(SD21_PRESETS['sd21-base'], 'fp32')).toEqual(['unet']);
    expect(partsOverProtobufLimit(SD21_PRESETS.sd21, 'fp16')).toEqual([]);
    expect(partsOverProtobufLimit(SMALL, 'fp32')).toEqual([]);
  });

  it('counts what the builders emit (every float initializer of a generated bundle)', () => {
    for (const part of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const) {
      expect({ part, n: floatParameters(loadModel(join(bundle.dir, part, 'model.onnx'))) }).toEqual({ part, n: bundle.parameters[part] });
    }
    expect(bundle.parameters.unet).toBe(unetParameterCount(SMALL));
  });
});

describe('createSdBundle (SD 2.1 structure, small widths)', () => {
  it("writes optimum's layout: UNet weights in model.onnx_data, the others inline", () => {
    expect([...filesUnder(bundle.dir).keys()].sort()).toEqual([
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
      'unet/model.onnx_data',
      'vae_decoder/config.json',
      'vae_decoder/model.onnx',
      'vae_encoder/config.json',
      'vae_encoder/model.onnx',
    ]);
    const unet = loadModel(join(bundle.dir, 'unet/model.onnx'));
    const inits = [...unet.graph.initializers.values()];
    const bytes = (i: (typeof inits)[number]) => numel(i.dims) * 4;
    expect(inits.filter((i) => isExternal(i.data) !== bytes(i) >= 1024).map((i) => i.name)).toEqual([]); // onnx.save_model's size_threshold
    for (const i of inits) if (isExternal(i.data)) expect(i.data.path).toBe(join(bundle.dir, 'unet/model.onnx_data'));
    const text = loadModel(join(bundle.dir, 'text_encoder/model.onnx'));
    // loadModel references large inline weights in place (in model.onnx itself); none may lie in another file
    const elsewhere = [...text.graph.initializers.values()].filter((i) => isExternal(i.data) && i.data.path !== join(bundle.dir, 'text_encoder/model.onnx'));
    expect(elsewhere.map((i) => i.name)).toEqual([]);
    expect(json(bundle.dir, 'model_index.json')).toMatchObject({
      _class_name: 'ORTStableDiffusionPipeline',
      vae_encoder: ['optimum', 'ORTModelVaeEncoder'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    });
    expect(json(bundle.dir, 'unet/config.json')).toMatchObject({
      sample_size: 16,
      attention_head_dim: [1, 2, 2, 2],
      cross_attention_dim: 64,
      layers_per_block: 2,
      use_linear_projection: true,
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    });
    expect(json(bundle.dir, 'text_encoder/config.json')).toMatchObject({ hidden_act: 'gelu', vocab_size: 49408, eos_token_id: 2 });
  });

  it("loads with loadBundle, with SD 2.1-base's scheduler and a 49408-token CLIP tokenizer", () => {
    const b = loadBundle(bundle.dir, { inspectModels: 'always' });
    expect(b).toMatchObject({ sampleSize: 128, vaeScaleFactor: 8, latentChannels: 4, textEmbedDim: 64, maxTokens: 77, vaeScalingFactor: 0.18215 });
    expect(b.scheduler).toMatchObject({
      predictionType: 'epsilon',
      betaSchedule: 'scaled_linear',
      betaStart: 0.00085,
      betaEnd: 0.012,
      numTrainTimesteps: 1000,
      stepsOffset: 1,
    });
    const tok = ClipTokenizer.fromDir(b.tokenizerDir);
    expect(tok.vocabSize).toBe(49408);
    expect([tok.idOf('<|startoftext|>'), tok.idOf('<|endoftext|>'), tok.idOf('!')]).toEqual([49406, 49407, 0]);
    expect(tok.tokenize('a photo of a dog on the beach')).toEqual(['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'dog</w>', 'on</w>', 'the</w>', 'beach</w>']);
    expect(tok.tokenize('a zebra')).toEqual(['a</w>', 'zebra</w>']);
    const odd = 'quixotic xylophones of the tundra';
    expect(tok.decode(tok.encode(odd), { skipSpecialTokens: true })).toBe(odd);
    expect(tok.encodePadded('a dog').length).toBe(77);
  });

  it('the diffusers-index layout (a `vae` key) loads with the same folders', async () => {
    const other = await createSdBundle(join(tmp, 'diffusers-index'), { config: SMALL, layout: 'diffusers-index' });
    expect(json(other.dir, 'model_index.json')).toMatchObject({ _class_name: 'StableDiffusionPipeline', vae: ['diffusers', 'AutoencoderKL'] });
    expect(json(other.dir, 'model_index.json')).not.toHaveProperty('vae_encoder');
    expect(filesUnder(other.dir).has('unet/model.onnx_data')).toBe(false); // a small UNet stays inline by default
    expect(loadBundle(other.dir, { inspectModels: 'always' }).sampleSize).toBe(128);
  });

  it('writes a given tokenizer (one learned for the model) instead of the synthetic one; its size must be the embedding rows', async () => {
    const files = tinyTokenizerFiles({ words: ['a red cat', 'a blue dog'] });
    const rows = Object.keys(files.vocab).length;
    const config = { ...SMALL, textEncoder: { ...SMALL.textEncoder, vocabSize: rows } };
    const own = await createSdBundle(join(tmp, 'own-tokenizer'), { config, tokenizer: files });
    const tok = ClipTokenizer.fromDir(join(own.dir, 'tokenizer'));
    expect(tok.vocabSize).toBe(rows);
    expect(tok.tokenize('a red cat')).toEqual(['a</w>', 'red</w>', 'cat</w>']);
    await expect(createSdBundle(join(tmp, 'mismatch'), { config: SMALL, tokenizer: files })).rejects.toThrow(/tokenizer has \d+ tokens/);
  });

  it('sd21 is v-prediction with DDIM and 768 px (96 latents) in the real preset', async () => {
    expect(SD21_PRESETS.sd21).toMatchObject({ sampleSize: 768, predictionType: 'v_prediction', schedulerClass: 'DDIMScheduler' });
    const v = await createSdBundle(join(tmp, 'v'), { variant: 'sd21', config: small(SD21_PRESETS.sd21, 192) });
    const b = loadBundle(v.dir);
    expect(b.scheduler.predictionType).toBe('v_prediction');
    expect(json(v.dir, 'unet/config.json')).toMatchObject({ sample_size: 24, upcast_attention: true });
  });

  it('is byte-identical for the same seed; another seed changes the weights only', async () => {
    const again = filesUnder((await createSdBundle(join(tmp, 'again'), { config: SMALL, externalData: ['unet'] })).dir);
    const first = filesUnder(bundle.dir);
    for (const [name, bytes] of first) expect({ name, same: bytes.equals(again.get(name)!) }).toEqual({ name, same: true });
    const other = filesUnder((await createSdBundle(join(tmp, 'seed1'), { config: SMALL, seed: 1, externalData: ['unet'] })).dir);
    expect(other.get('unet/model.onnx')!.length).toBe(first.get('unet/model.onnx')!.length); // same graph
    expect(other.get('unet/model.onnx_data')!.equals(first.get('unet/model.onnx_data')!)).toBe(false);
    expect(other.get('text_encoder/model.onnx')!.equals(first.get('text_encoder/model.onnx')!)).toBe(false);
  });

  it('rejects a bad seed, variant or a config the structure cannot take', async () => {
    await expect(createSdBundle(join(tmp, 'bad'), { seed: -1 })).rejects.toThrow(/seed -1/);
    await expect(createSdBundle(join(tmp, 'bad'), { variant: 'sd15' as never })).rejects.toThrow(/unknown SD variant/);
    await expect(createSdBundle(join(tmp, 'bad'), { config: { ...SMALL, unet: { ...SMALL.unet, normGroups: 7 } } })).rejects.toThrow(/normGroups 7/);
  });
});

describe("the text encoder is shaped like transformers' CLIPTextModel export", () => {
  it('reshapes input_ids (view(-1, L)) before the token-embedding Gather and slices position_ids by the length', () => {
    const g = loadModel(join(bundle.dir, 'text_encoder/model.onnx')).graph;
    expect(g.inputs[0]).toEqual({ name: 'input_ids', dtype: DataType.INT64, shape: ['batch', 'sequence_length'] });
    const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const readers = g.nodes.filter((n) => n.inputs.includes('input_ids'));
    const reshape = readers.find((n) => n.opType === 'Reshape')!;
    const concat = producer.get(reshape.inputs[1]!)!;
    expect(concat.opType).toBe('Concat');
    const seq = producer.get(producer.get(concat.inputs[1]!)!.inputs[0]!)!; // Unsqueeze <- Gather(Shape(input_ids), -1)
    expect([seq.opType, producer.get(seq.inputs[0]!)!.opType, producer.get(seq.inputs[0]!)!.inputs[0]]).toEqual(['Gather', 'Shape', 'input_ids']);
    const tokenGather = g.nodes.find((n) => n.opType === 'Gather' && n.inputs[0] === 'text_model.embeddings.token_embedding.weight')!;
    expect(tokenGather.inputs[1]).toBe(reshape.outputs[0]);
    const positionIds = g.initializers.get('text_model.embeddings.position_ids')!;
    expect([positionIds.dtype, positionIds.dims]).toEqual([DataType.INT64, [1, 77]]);
    expect(g.nodes.find((n) => n.inputs[0] === 'text_model.embeddings.position_ids')!.opType).toBe('Slice');
    expect(findTokenEmbedding(loadModel(join(bundle.dir, 'text_encoder/model.onnx')))).toMatchObject({ rows: 49408, dim: 64 });
  });

  it.each([1, 2])('batch %i: last_hidden_state [B,77,64], pooled at ArgMax(ids), causal, any sequence length', async (b) => {
    const s = await session(bundle.dir, 'text_encoder');
    const ids = new BigInt64Array(b * 77).fill(0n); // SD 2.x pads with '!' (0)
    const eosAt = [5, 9];
    for (let i = 0; i < b; i++) {
      ids[i * 77] = 49406n;
      for (let j = 1; j < eosAt[i]!; j++) ids[i * 77 + j] = BigInt(400 + 13 * j + i);
      ids[i * 77 + eosAt[i]!] = 49407n;
    }
    const out = await s.run({ input_ids: new ort.Tensor('int64', ids, [b, 77]) });
    expect(out.last_hidden_state!.dims).toEqual([b, 77, 64]);
    expect(out.pooler_output!.dims).toEqual([b, 64]);
    const h = out.last_hidden_state!.data as Float32Array,
      p = out.pooler_output!.data as Float32Array;
    expect(h.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < b; i++) {
      const row = (i * 77 + eosAt[i]!) * 64;
      expect(Array.from(p.subarray(i * 64, (i + 1) * 64))).toEqual(Array.from(h.subarray(row, row + 64)));
    }
    // causal: the first 10 positions of a 10-token input equal those of the 77-token one
    const short = await s.run({ input_ids: new ort.Tensor('int64', ids.slice(0, 10), [1, 10]) });
    expect(short.last_hidden_state!.dims).toEqual([1, 10, 64]);
    const hs = short.last_hidden_state!.data as Float32Array;
    const err = hs.reduce((m, v, j) => Math.max(m, Math.abs(v - h[j]!)), 0);
    expect(err).toBeLessThan(1e-4);
  });
});

describe('the UNet', () => {
  it("has SD 2.1's 16 cross-attention layers (6 down, 1 mid, 9 up; none in the DownBlock2D / UpBlock2D level)", () => {
    const unet = loadModel(join(bundle.dir, 'unet/model.onnx'));
    const layers = findCrossAttentionLayers(unet, { sample: [1, 4, 16, 16], timestep: [1], encoder_hidden_states: [1, 77, 64] });
    expect(layers.map((l) => l.scope.split('/')[1])).toEqual([
      'down_blocks.0',
      'down_blocks.0',
      'down_blocks.1',
      'down_blocks.1',
      'down_blocks.2',
      'down_blocks.2',
      'mid_block',
      'up_blocks.1',
      'up_blocks.1',
      'up_blocks.1',
      'up_blocks.2',
      'up_blocks.2',
      'up_blocks.2',
      'up_blocks.3',
      'up_blocks.3',
      'up_blocks.3',
    ]);
    expect(layers.map((l) => l.queryLength)).toEqual([256, 256, 64, 64, 16, 16, 4, 16, 16, 16, 64, 64, 64, 256, 256, 256]);
  });

  it('runs: out_sample [2,4,16,16], O(1), one timestep broadcast to the batch, text and timestep matter', async () => {
    const s = await session(bundle.dir, 'unet');
    const sample = randn('sample', [2, 4, 16, 16]),
      context = randn('ctx', [2, 77, 64]);
    const run = async (t: bigint[], ctx = context) =>
      (await s.run({ sample, timestep: new ort.Tensor('int64', BigInt64Array.from(t), [t.length]), encoder_hidden_states: ctx })).out_sample!;
    const out = await run([500n, 500n]);
    expect(out.dims).toEqual([2, 4, 16, 16]);
    const y = out.data as Float32Array;
    expect(y.every(Number.isFinite)).toBe(true);
    expect(std(y)).toBeGreaterThan(0.1);
    expect(std(y)).toBeLessThan(10);
    expect(Array.from((await run([500n])).data as Float32Array)).toEqual(Array.from(y));
    expect(Array.from((await run([10n, 10n])).data as Float32Array)).not.toEqual(Array.from(y));
    expect(Array.from((await run([500n, 500n], randn('ctx2', [2, 77, 64]))).data as Float32Array)).not.toEqual(Array.from(y));
  });

  it('the VAE: [1,3,128,128] -> moments [1,8,16,16]; latents [1,4,16,16] -> [1,3,128,128]', async () => {
    const enc = await (await session(bundle.dir, 'vae_encoder')).run({ sample: randn('img', [1, 3, 128, 128]) });
    expect(enc.latent_sample!.dims).toEqual([1, 8, 16, 16]);
    const dec = await (await session(bundle.dir, 'vae_decoder')).run({ latent_sample: randn('lat', [1, 4, 16, 16]) });
    expect(dec.sample!.dims).toEqual([1, 3, 128, 128]);
    for (const t of [enc.latent_sample!, dec.sample!]) expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});

describe('fp16', () => {
  it("every float weight, input and output is float16; onnxruntime's CPU provider loads and runs it", async () => {
    const half = await createSdBundle(join(tmp, 'fp16'), { config: SMALL, dtype: 'fp16' });
    for (const part of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const) {
      const g = loadModel(join(half.dir, part, 'model.onnx')).graph;
      const floats = [...g.initializers.values()].filter((i) => i.dtype === DataType.FLOAT);
      expect({ part, float32: floats.map((i) => i.name) }).toEqual({ part, float32: [] });
      for (const v of [...g.inputs, ...g.outputs])
        if (v.name !== 'input_ids' && v.name !== 'timestep') expect({ v: v.name, dtype: v.dtype }).toEqual({ v: v.name, dtype: DataType.FLOAT16 });
    }
    expect(half.bytes.unet).toBeLessThan(bundle.bytes.unet * 0.6);
    const unet = await session(half.dir, 'unet');
    const toHalf = (t: ort.Tensor) =>
      new ort.Tensor(
        'float16',
        Uint16Array.from(t.data as Float32Array, (v) => floatToHalf(v)),
        t.dims,
      );
    const out = await unet.run({
      sample: toHalf(randn('sample', [1, 4, 16, 16])),
      timestep: new ort.Tensor('int64', BigInt64Array.of(500n), [1]),
      encoder_hidden_states: toHalf(randn('ctx', [1, 77, 64])),
    });
    expect(out.out_sample!.type).toBe('float16');
    const text = await session(half.dir, 'text_encoder');
    const ids = new BigInt64Array(77).fill(49407n);
    ids[0] = 49406n;
    expect((await text.run({ input_ids: new ort.Tensor('int64', ids, [1, 77]) })).last_hidden_state!.type).toBe('float16');
  });
});
