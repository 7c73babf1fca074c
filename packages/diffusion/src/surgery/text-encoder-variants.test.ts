/**
 * The exporter-shaped text-encoder fixtures (fixtures/text_encoder_variants, made by
 * scripts/export_text_encoder_variants.py): each ORIGINAL model.onnx, run as the file is in onnxruntime-node, matches
 * its PyTorch float64 reference (relative error < 1e-4, fp16 < 1e-2), with batch 2 and batch 1 (symbolic batch), and
 * its manifest agrees with the graph (token table rows, the input dtypes). On each, the placeholder surgery finds the
 * token table (through the ids' Reshape / Cast, in a table padded past the vocabulary) and placeholder rows encode
 * exactly like the table rows they were set to; a position_ids input is filled in from the ids. (The adapters on
 * these graphs, fused projections included, are tested in packages/dynasyn's graph/adapters-variants.test.ts.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType, halfToFloat, initializerToHost, loadModel, readSafetensors, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { placeholderStartValues, withPlaceholderEmbeddings } from './placeholders.js';
import { extraTextInputs, withIdsOnlyInputs } from './text-inputs.js';
import { usesFloat16, withFloat32Compute } from './precision.js';
import { fixturesDir, ort, relativeError } from '../testing/fixtures.js';

interface VariantManifest {
  name: string;
  model: string;
  reference: string;
  inputs: Record<string, string>;
  inputDtypes: Record<string, 'int64' | 'int32'>;
  outputs: Record<string, string>;
  baseVocab: number;
  tableRows: number;
  dim: number;
  maxLength: number;
  dtype?: 'float16';
  graph: { tokenEmbedding: { initializer: string; dims: number[]; dtype: string } };
}

const root = path.join(fixturesDir, 'text_encoder_variants');
const names = fs
  .readdirSync(root)
  .filter((d) => fs.existsSync(path.join(root, d, 'manifest.json')))
  .sort();

function load(name: string) {
  const dir = path.join(root, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as VariantManifest;
  return { dir, manifest, reference: readSafetensors(path.join(dir, manifest.reference)).tensors };
}

function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return t.data instanceof Uint16Array ? Float32Array.from(t.data, halfToFloat) : Float32Array.from(t.data as ArrayLike<number>);
  throw new Error(`unexpected output type ${t.type}`);
}

/** Rows [0, rows) of the reference input, as the graph input's dtype. */
function feed(t: HostTensor, dtype: 'int64' | 'int32', rows: number): ort.Tensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const src = (t.data as BigInt64Array).subarray(0, rows * per);
  const dims = [rows, ...t.dims.slice(1)];
  return dtype === 'int32' ? new ort.Tensor('int32', Int32Array.from(src, Number), dims) : new ort.Tensor('int64', BigInt64Array.from(src), dims);
}

async function run(file: string, feeds: Record<string, ort.Tensor>) {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

test('the variants are all there', () => {
  expect(names).toEqual(['clip_hf', 'clip_hf_eos', 'clip_hf_fp16', 'clip_hf_int32', 'clip_hf_position_input', 'clip_padded_table', 'openclip_mha']);
});

describe.each(names)('%s', (name) => {
  const { dir, manifest, reference } = load(name);
  const tolerance = manifest.dtype === 'float16' ? 1e-2 : 1e-4;
  const batch = reference.get(manifest.inputs.input_ids!)!.dims[0]!;

  test.each([batch, 1])(`the original model matches PyTorch with batch %i (relative error < ${tolerance})`, async (rows: number) => {
    const feeds = Object.fromEntries(Object.entries(manifest.inputs).map(([k, ref]) => [k, feed(reference.get(ref)!, manifest.inputDtypes[k]!, rows)]));
    const out = await run(path.join(dir, manifest.model), feeds);
    for (const [o, ref] of Object.entries(manifest.outputs)) {
      const want = reference.get(ref)!;
      const got = out[o]!;
      const per = want.dims.slice(1).reduce((a, b) => a * b, 1);
      expect(got.dims).toEqual([rows, ...want.dims.slice(1)]);
      expect(got.type).toBe(manifest.dtype ?? 'float32');
      expect(relativeError(floats(got), (want.data as Float32Array).subarray(0, rows * per))).toBeLessThan(tolerance);
    }
  });

  test('the manifest agrees with the graph', () => {
    const model = loadModel(path.join(dir, manifest.model));
    const table = model.graph.initializers.get(manifest.graph.tokenEmbedding.initializer)!;
    expect(table.dims).toEqual([manifest.tableRows, manifest.dim]);
    expect(table.dtype).toBe(manifest.dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT);
    expect(manifest.tableRows).toBeGreaterThanOrEqual(manifest.baseVocab);
    for (const [k, dtype] of Object.entries(manifest.inputDtypes)) {
      expect(model.graph.inputs.find((v) => v.name === k)?.dtype).toBe(dtype === 'int32' ? DataType.INT32 : DataType.INT64);
    }
    if (manifest.tableRows > manifest.baseVocab) {
      // padding rows exist and are not zeros
      const rows = initializerToHost(table).data as Float32Array;
      expect(rows.subarray(manifest.baseVocab * manifest.dim).some((x) => x !== 0)).toBe(true);
    }
  });
});

/** [start, ...tokens, end, pad...] padded to 77. */
function promptIds(m: VariantManifest & { bos: number; eos: number; pad?: number }, tokens: number[]): number[] {
  const ids = [m.bos, ...tokens, m.eos];
  while (ids.length < 77) ids.push(m.pad ?? m.eos);
  return ids;
}

async function runModel(model: OnnxModel, feeds: Record<string, ort.Tensor>) {
  const session = await ort.InferenceSession.create(serializeModel(model), { intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe.each(names)('%s: placeholder surgery', (name) => {
  const { dir, manifest } = load(name);
  const m = manifest as VariantManifest & { bos: number; eos: number; pad?: number };
  const idsType = manifest.inputDtypes.input_ids ?? 'int64';
  const ids = (rows: number[][]) =>
    idsType === 'int32'
      ? new ort.Tensor('int32', Int32Array.from(rows.flat()), [rows.length, 77])
      : new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, 77]);
  const V = manifest.baseVocab;

  test('input_ids is the only input left; placeholder rows set to table rows t_i encode like the prompt with t_i', async () => {
    const original = withIdsOnlyInputs(loadModel(path.join(dir, manifest.model)));
    expect(extraTextInputs(original)).toEqual([]);
    const edited = withPlaceholderEmbeddings(original, { numPlaceholders: 2, baseVocabSize: V });
    expect(edited.tokenEmbedding).toMatchObject({ name: manifest.graph.tokenEmbedding.initializer, vocabSize: V, rows: manifest.tableRows });
    const [t0, t1] = [42, 517];
    const start = placeholderStartValues(original, [t0, t1]);
    const startFeed =
      start.dtype === DataType.FLOAT16
        ? new ort.Tensor('float16', start.data as Uint16Array, start.dims)
        : new ort.Tensor('float32', start.data as Float32Array, start.dims);
    const withPlaceholders = [promptIds(m, [5, V, 7, V + 1, 9]), promptIds(m, [V + 1, 3])];
    const withTokens = [promptIds(m, [5, t0, 7, t1, 9]), promptIds(m, [t1, 3])];
    const ours = await runModel(edited.model, { input_ids: ids(withPlaceholders), [edited.inputName]: startFeed });
    const base = await runModel(original, { input_ids: ids(withTokens) });
    for (const o of Object.keys(manifest.outputs)) {
      expect(relativeError(floats(ours[o]!), floats(base[o]!))).toBeLessThan(1e-6);
    }
  });

  if (manifest.inputs.position_ids) {
    test('the filled-in position_ids give the outputs of the model fed positions 0..L-1', async () => {
      const { reference } = load(name);
      const rows = reference.get(manifest.inputs.input_ids!)!;
      const feeds = { input_ids: feed(rows, idsType, rows.dims[0]!) };
      const filled = await runModel(withIdsOnlyInputs(loadModel(path.join(dir, manifest.model))), feeds);
      const want = reference.get(manifest.outputs.last_hidden_state!)!;
      expect(relativeError(floats(filled.last_hidden_state!), want.data as Float32Array)).toBeLessThan(1e-4);
    });
  }
});

test('a float16 export computed in float32 (training): float outputs, closer to the float64 reference than float16 is', async () => {
  const { dir, manifest, reference } = load('clip_hf_fp16');
  const model = loadModel(path.join(dir, manifest.model));
  expect(usesFloat16(model)).toBe(true);
  const placeholders = withPlaceholderEmbeddings(model, { numPlaceholders: 2, baseVocabSize: manifest.baseVocab }).model;
  const f32 = withFloat32Compute(placeholders);
  expect(usesFloat16(f32)).toBe(false);
  // the weights stay float16 (read through a Cast): nothing is converted in memory or on disk
  expect([...f32.graph.initializers.values()].filter((i) => i.dims.length === 2).every((i) => i.dtype === DataType.FLOAT16)).toBe(true);
  const rows = reference.get(manifest.inputs.input_ids!)!;
  const start = placeholderStartValues(model, [42, 517]);
  const out = await runModel(f32, {
    input_ids: feed(rows, 'int64', rows.dims[0]!),
    placeholder_embeddings: new ort.Tensor('float32', Float32Array.from(start.data as Uint16Array, halfToFloat), start.dims),
  });
  const half = await run(path.join(dir, manifest.model), { input_ids: feed(rows, 'int64', rows.dims[0]!) });
  const want = reference.get(manifest.outputs.last_hidden_state!)!.data as Float32Array;
  expect(out.last_hidden_state!.type).toBe('float32');
  const errF32 = relativeError(floats(out.last_hidden_state!), want);
  expect(errF32).toBeLessThan(relativeError(floats(half.last_hidden_state!), want));
  expect(errF32).toBeLessThan(2e-3); // float16 weights, float32 arithmetic
});
