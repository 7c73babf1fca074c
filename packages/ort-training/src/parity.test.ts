/**
 * Parity with PyTorch autograd on graphs that torch.onnx exported (fixtures/, made by
 * scripts/export_fixtures.py with Debian's python3-torch; no Python is needed here). Each fixture's loss is
 * differentiated with respect to the tensors PyTorch recorded gradients for, the training graph is saved and
 * run by onnxruntime-node from the file, and every gradient is compared with the reference.
 *
 * Metric: per tensor, max|ours - ref| / max|ref|. It is scale-free, and unlike an element-wise relative error it
 * is not blown up by elements near zero (GroupNorm and softmax gradients have many). The references are float64
 * autograd rounded to float32; PyTorch's own float32 autograd is within 3e-6 of them (manifest
 * torchFp32RelError), so 1e-4 leaves room for onnxruntime's different float32 summation orders while any wrong
 * rule (a missing term, a wrong axis or layout) gives errors of order 1e-2 or more.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadModel, readExternal, saveModel, type OnnxModel } from './model.js';
import { isExternal } from './graph.js';
import { deriveGradientGraph } from './autodiff.js';
import { readSafetensors } from './safetensors.js';
import { DataType, relativeError, type HostTensor } from './tensor.js';

const TOLERANCE = 1e-4;
const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

interface Manifest {
  name: string;
  model: string;
  reference: string;
  opset: number;
  loss: string;
  lossReference: string;
  inputs: Record<string, string>;
  gradients: { tensor: string; reference: string; torch: string; layout: string }[];
  externalData?: string;
}

const readManifest = (name: string): Manifest => JSON.parse(fs.readFileSync(path.join(fixturesDir, name, 'manifest.json'), 'utf8'));

function ortTensor(t: HostTensor): ort.Tensor {
  if (t.dtype === DataType.INT64) return new ort.Tensor('int64', t.data as BigInt64Array, t.dims);
  if (t.dtype === DataType.FLOAT) return new ort.Tensor('float32', t.data as Float32Array, t.dims);
  throw new Error(`fixture input of unexpected type ${t.dtype}`);
}

interface ParityResult {
  lossError: number;
  gradientErrors: Record<string, number>;
  trainingModelBytes: number;
  outDir: string;
}

/** Derive, save, run from the file, compare. */
async function runParity(name: string): Promise<ParityResult> {
  const manifest = readManifest(name);
  const dir = path.join(fixturesDir, name);
  const reference = readSafetensors(path.join(dir, manifest.reference)).tensors;
  const model = loadModel(path.join(dir, manifest.model));
  const wrt = manifest.gradients.map((g) => g.tensor);
  const derived = deriveGradientGraph(model, { loss: manifest.loss, wrt });

  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), `parity-${name}-`));
  const file = path.join(outDir, 'train.onnx');
  saveModel(derived.model, file);
  const session = await ort.InferenceSession.create(file);

  // Feeds: the recorded inputs, plus each weight turned into an input at its start value (the initializer).
  const feeds: Record<string, ort.Tensor> = {};
  for (const [input, key] of Object.entries(manifest.inputs)) feeds[input] = ortTensor(reference.get(key)!);
  const start = loadStartValues(
    model,
    wrt.filter((t) => !(t in manifest.inputs)),
    dir,
  );
  for (const [t, v] of Object.entries(start)) feeds[t] = ortTensor(v);
  const out = await session.run(feeds);
  await session.release();

  const asNumbers = (t: ort.Tensor | HostTensor) => Array.from(t.data as Float32Array);
  const lossError = relativeError(asNumbers(out[manifest.loss]!), asNumbers(reference.get(manifest.lossReference)!));
  const gradientErrors: Record<string, number> = {};
  for (const g of manifest.gradients) {
    gradientErrors[g.tensor] = relativeError(asNumbers(out[derived.gradientOutputs[g.tensor]!]!), asNumbers(reference.get(g.reference)!));
  }
  return { lossError, gradientErrors, trainingModelBytes: fs.statSync(file).size, outDir };
}

/** Start values of trainable weights, read from the source model (inline or external data). */
function loadStartValues(model: OnnxModel, names: string[], dir: string): Record<string, HostTensor> {
  const values: Record<string, HostTensor> = {};
  for (const n of names) {
    const init = model.graph.initializers.get(n);
    if (!init || init.dtype !== DataType.FLOAT) throw new Error(`fixture ${dir}: no float32 initializer ${n}`);
    const bytes = new Uint8Array(isExternal(init.data) ? readExternal(init.data) : init.data); // a copy, 4-byte aligned
    values[n] = { dtype: DataType.FLOAT, dims: init.dims, data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
  }
  return values;
}

function expectParity(name: string, r: ParityResult): void {
  const errors = { loss: r.lossError, ...r.gradientErrors };
  const worst = Object.entries(r.gradientErrors).reduce((a, b) => (b[1] > a[1] ? b : a));
  console.log(`${name}: max relative error of the loss ${r.lossError.toExponential(2)}, of the gradients ${worst[1].toExponential(2)} (${worst[0]})`);
  // One assertion over every tensor, so a failure lists all that are out of tolerance at once.
  expect(Object.entries(errors).filter(([, e]) => !(e < TOLERANCE))).toEqual([]);
}

describe('gradients of torch.onnx-exported models match PyTorch autograd', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test.each(['unet', 'unet_opset14', 'text_encoder'])('%s', async (name) => {
    const r = await runParity(name);
    dirs.push(r.outDir);
    expectParity(name, r);
  });

  test('unet_external: weights in an external data file are referenced, not copied into the training model', async () => {
    const manifest = readManifest('unet_external');
    const dataFile = path.join(fixturesDir, 'unet_external', manifest.externalData!);
    const r = await runParity('unet_external');
    dirs.push(r.outDir);
    expectParity('unet_external', r);
    const weightBytes = fs.statSync(dataFile).size;
    // The training graph holds the forward and backward nodes and small constants, never the weights.
    expect(r.trainingModelBytes).toBeLessThan(weightBytes / 2);
    const beside = path.join(r.outDir, path.basename(dataFile));
    expect(fs.statSync(beside).size).toBe(weightBytes);
    expect(fs.readFileSync(beside).equals(fs.readFileSync(dataFile))).toBe(true);
  });
});
