/**
 * The UNet fixture (a diffusers-style UNet exported by scripts/export_fixtures.py): onnxruntime matches PyTorch,
 * and the captured attention maps equal PyTorch's softmax probabilities of the same layers, averaged over heads
 * and over the down/up layers of a grid, whether the layers are found by name or by structure.
 */
import path from 'node:path';
import { loadModel } from '@dynasyn/ort-training';
import { findCrossAttentionLayers, withAttentionCapture } from './attention.js';
import { isDiffusionError } from '../errors.js';
import { fixturesDir, loadFixture, relativeError, runModel, stripNames, toOrt, type Fixture, type ort } from '../testing/fixtures.js';

interface UNetManifest {
  model: string;
  reference: string;
  inputs: Record<string, string>;
  latent: [number, number];
  heads: number;
  contextLength: number;
  crossAttention: { module: string; block: string; grid: [number, number]; reference?: string }[];
  meanDownUp: Record<string, string>;
}

const TOLERANCE = 1e-4;
let fx: Fixture<UNetManifest>;
let feeds: Record<string, ort.Tensor>;
let inputShapes: Record<string, number[]>;

beforeAll(() => {
  fx = loadFixture<UNetManifest>('unet');
  feeds = Object.fromEntries(Object.entries(fx.manifest.inputs).map(([k, key]) => [k, toOrt(fx.reference.get(key)!)]));
  inputShapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]]));
});

const ref = (key: string) => fx.reference.get(key)!.data as Float32Array;
const data = (t: ort.Tensor | undefined) => t!.data as Float32Array;

describe('UNet fixture', () => {
  test('onnxruntime output equals PyTorch (relative error < 1e-4)', async () => {
    const out = await runModel(fx.model, feeds);
    expect(relativeError(data(out.out_sample), ref('out_sample'))).toBeLessThan(TOLERANCE);
  });

  test('finds every attn2 layer by name, with its block, grid, heads and layout', () => {
    const layers = findCrossAttentionLayers(fx.model, inputShapes);
    // torch.onnx scopes: module path with '/' between modules (`down_blocks.1/attentions.0/...`)
    expect(layers.map((l) => l.scope)).toEqual(fx.manifest.crossAttention.map((l) => `/${l.module.replace(/\.(?!\d)/g, '/')}`));
    expect(layers.map((l) => [l.block, l.grid])).toEqual(fx.manifest.crossAttention.map((l) => [l.block, l.grid]));
    expect(new Set(layers.map((l) => l.heads))).toEqual(new Set([fx.manifest.heads]));
    expect(new Set(layers.map((l) => l.keyLength))).toEqual(new Set([fx.manifest.contextLength]));
    // the fixture folds heads into the batch in the down and mid blocks and keeps a heads axis in the up blocks
    expect(layers.map((l) => l.layout)).toEqual(layers.map((l) => (l.block === 'up' ? 'heads-axis' : 'batch-heads')));
  });

  test.each([
    ['default grid (latent/4 = 4x4: down_blocks.2, up_blocks.1 x2)', undefined, '4x4'],
    ['grid 8x8 (down_blocks.1, up_blocks.2 x2)', [8, 8] as [number, number], '8x8'],
  ])('capture at the %s equals the mean of PyTorch softmax probabilities', async (_label, grid, key) => {
    const capture = withAttentionCapture(fx.model, { inputShapes, ...(grid ? { grid } : {}) });
    expect(capture.layers.map((l) => l.block)).toEqual(['down', 'up', 'up']);
    const out = await runModel(capture.model, feeds);
    const probs = out[capture.outputName]!;
    expect(probs.dims).toEqual([2, (16 * 16) / (key === '4x4' ? 16 : 4), 77]);
    expect(relativeError(data(probs), ref(fx.manifest.meanDownUp[key]!))).toBeLessThan(TOLERANCE);
    // the UNet's own output is untouched by the surgery
    expect(relativeError(data(out.out_sample), ref('out_sample'))).toBeLessThan(TOLERANCE);
  });

  test('one layer alone (mid block, 2x2) equals its own head-averaged probabilities', async () => {
    const capture = withAttentionCapture(fx.model, { inputShapes, grid: [2, 2], blocks: ['mid'] });
    const out = await runModel(capture.model, feeds);
    const mid = fx.manifest.crossAttention.find((l) => l.block === 'mid')!;
    expect(relativeError(data(out.attention_probs), ref(mid.reference!))).toBeLessThan(TOLERANCE);
  });

  test('with every name stripped, the layers are found by structure and capture the same maps', async () => {
    const stripped = stripNames(fx.model);
    const named = findCrossAttentionLayers(fx.model, inputShapes);
    const found = findCrossAttentionLayers(stripped, inputShapes);
    expect(found.map((l) => [l.block, l.grid, l.heads, l.layout])).toEqual(named.map((l) => [l.block, l.grid, l.heads, l.layout]));
    expect(found.every((l) => l.scope === '')).toBe(true);
    const capture = withAttentionCapture(stripped, { inputShapes });
    const out = await runModel(capture.model, feeds);
    expect(relativeError(data(out.attention_probs), ref(fx.manifest.meanDownUp['4x4']!))).toBeLessThan(TOLERANCE);
  });

  test("another exporter's names (ort-training's fixture: /unet/down0_attn/.../attn2) give the same facts", () => {
    const other = loadModel(path.join(fixturesDir, '../../ort-training/fixtures/unet/model.onnx'));
    const layers = findCrossAttentionLayers(other, {});
    expect(layers.map((l) => [l.scope, l.block, l.grid])).toEqual([
      ['/unet/down0_attn/transformer_blocks.0/attn2', 'down', [16, 16]],
      ['/unet/mid_attn/transformer_blocks.0/attn2', 'mid', [8, 8]],
      ['/unet/up0_attn/transformer_blocks.0/attn2', 'up', [16, 16]],
    ]);
    expect(findCrossAttentionLayers(stripNames(other), {}).map((l) => [l.block, l.grid])).toEqual(layers.map((l) => [l.block, l.grid]));
  });

  test('a grid no layer has is refused, listing the grids found', () => {
    let err: unknown;
    try {
      withAttentionCapture(fx.model, { inputShapes, grid: [3, 3] });
    } catch (e) {
      err = e;
    }
    expect(isDiffusionError(err, 'BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/grid 3x3.*down 16x16.*mid 2x2.*up 4x4/);
    // the mid block is at 2x2, but it is not among the default blocks
    expect(() => withAttentionCapture(fx.model, { inputShapes, grid: [2, 2] })).toThrow(/no cross-attention layer of the down\/up blocks has grid 2x2/);
  });

  test('symbolic batch without its concrete shape is a clear error', () => {
    expect(() => findCrossAttentionLayers(fx.model, {})).toThrow(/give its concrete shape/);
  });
});

describe('the default grid of a small UNet', () => {
  it('is the coarsest down/up grid when latent/4 has only the mid block (the toy-world UNet: 16x16 latents, layers at 16x16 and 8x8)', () => {
    // the committed toy-world bundle (models/toyworld): its 4x4 cross-attention is the mid block's alone
    const unet = loadModel(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../models/toyworld/unet/model.onnx'));
    const shapes = { sample: [2, 4, 16, 16], timestep: [2], encoder_hidden_states: [2, 77, 128] };
    const grids = findCrossAttentionLayers(unet, shapes).map((l) => `${l.block} ${l.grid.join('x')}`);
    expect(grids).toContain('mid 4x4');
    const captured = withAttentionCapture(unet, { inputShapes: shapes });
    expect(captured.layers.map((l) => `${l.block} ${l.grid.join('x')}`)).toEqual(['down 8x8', 'up 8x8', 'up 8x8']);
    // an explicit grid is still refused where the blocks have none
    expect(() => withAttentionCapture(unet, { inputShapes: shapes, grid: [4, 4] })).toThrow(/no cross-attention layer of the down\/up blocks has grid 4x4/);
  });
});
