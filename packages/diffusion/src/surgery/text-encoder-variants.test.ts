/**
 * The exporter-shaped text-encoder fixtures (fixtures/text_encoder_variants, made by
 * scripts/export_text_encoder_variants.py): each ORIGINAL model.onnx, run as the file is in onnxruntime-node, matches
 * its PyTorch float64 reference (relative error < 1e-4, fp16 < 1e-2), with batch 2 and batch 1 (symbolic batch), and
 * its manifest agrees with the graph (token table rows, the input dtypes). These are the ground truth the placeholder
 * surgery and the text-encoder adapters are checked against.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType, initializerToHost, loadModel, readSafetensors, type HostTensor } from '@dynasyn/ort-training';
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
const names = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'manifest.json'))).sort();

function load(name: string) {
  const dir = path.join(root, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as VariantManifest;
  return { dir, manifest, reference: readSafetensors(path.join(dir, manifest.reference)).tensors };
}

/** IEEE half bits to numbers. */
function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    out[i] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}

function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return t.data instanceof Uint16Array ? halfToFloat(t.data) : Float32Array.from(t.data as ArrayLike<number>);
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
  expect(names).toEqual([
    'clip_hf', 'clip_hf_eos', 'clip_hf_fp16', 'clip_hf_int32', 'clip_hf_position_input', 'clip_padded_table', 'openclip_mha',
  ]);
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
