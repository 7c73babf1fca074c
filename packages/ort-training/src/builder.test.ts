/**
 * The Builder's simplifications (CSE of emitted nodes and small constants, reshape-of-reshape and
 * transpose-of-transpose composition) must never change results: checked op by op here, and on whole
 * torch.onnx-exported fixtures by running the training graph derived with and without them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Builder, builderOptions } from './builder.js';
import { Graph } from './graph.js';
import { deriveGradientGraph } from './autodiff.js';
import { loadModel, serializeModel, type OnnxModel } from './model.js';
import { isExternal } from './graph.js';
import { readSafetensors } from './safetensors.js';
import { DataType, type HostTensor } from './tensor.js';

const F = DataType.FLOAT;

function builderOver(inputs: Record<string, number[]>): Builder {
  const g = new Graph({ name: 't' });
  const types = new Map(Object.entries(inputs).map(([n, dims]) => [n, { dtype: F, dims }]));
  for (const [name, dims] of Object.entries(inputs)) g.addInput({ name, dtype: F, shape: dims });
  return new Builder(g, 17, types, new Map());
}

describe('Builder simplifications', () => {
  afterEach(() => {
    builderOptions.simplify = true;
  });

  test('an identical request returns the earlier node, with shared shape constants', () => {
    const b = builderOver({ x: [2, 3, 4] });
    const r1 = b.reshape('x', [6, 4]),
      r2 = b.reshape('x', [6, 4]);
    expect(r2).toBe(r1);
    expect(b.graph.nodes.filter((n) => n.opType === 'Reshape')).toHaveLength(1);
    expect(b.mul('x', 'x')).toBe(b.mul('x', 'x'));
    expect(b.int64s([6, 4])).toBe(b.int64s([6, 4]));
    // a different attribute is a different node
    expect(b.transpose('x', [0, 2, 1])).not.toBe(b.transpose('x', [1, 0, 2]));
  });

  test('a reshape of a reshape reshapes the source; back to its shape is the source itself', () => {
    const b = builderOver({ x: [2, 3, 4] });
    const flat = b.reshape('x', [24]);
    const again = b.reshape(flat, [6, 4]);
    const node = b.graph.nodes.find((n) => n.outputs[0] === again)!;
    expect(node.inputs[0]).toBe('x');
    expect(b.reshape(flat, [2, 3, 4])).toBe('x');
  });

  test('transposes compose, and cancel to the source', () => {
    const b = builderOver({ x: [2, 3, 4] });
    const t = b.transpose('x', [1, 2, 0]); // [3, 4, 2]
    expect(b.dims(t)).toEqual([3, 4, 2]);
    expect(b.transpose(t, [2, 0, 1])).toBe('x');
    const u = b.transpose(t, [1, 0, 2]); // [4, 3, 2] = x axes [2, 1, 0]
    const node = b.graph.nodes.find((n) => n.outputs[0] === u)!;
    expect(node.inputs[0]).toBe('x');
    expect(b.dims(u)).toEqual([4, 3, 2]);
  });

  test('off: every request is a new node', () => {
    builderOptions.simplify = false;
    const b = builderOver({ x: [2, 3, 4] });
    expect(b.reshape('x', [6, 4])).not.toBe(b.reshape('x', [6, 4]));
    expect(b.transpose(b.transpose('x', [1, 0, 2]), [1, 0, 2])).not.toBe('x');
  });
});

const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

function floatInit(model: OnnxModel, name: string): HostTensor {
  const init = model.graph.initializers.get(name)!;
  if (isExternal(init.data)) throw new Error('inline fixture expected');
  const bytes = new Uint8Array(init.data); // a copy, 4-byte aligned
  return { dtype: F, dims: init.dims, data: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4) };
}

/** Training graph of a fixture w.r.t. every float weight and its recorded inputs; gradients by name. */
async function gradients(name: string, simplify: boolean): Promise<{ nodes: number; grads: Record<string, Float32Array> }> {
  const dir = path.join(fixturesDir, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const reference = readSafetensors(path.join(dir, manifest.reference)).tensors;
  const model = loadModel(path.join(dir, manifest.model));
  const weights = [...model.graph.initializers.values()].filter((i) => i.dtype === F && i.dims.length > 0).map((i) => i.name);
  const wrt = [...Object.keys(manifest.inputs).filter((i) => reference.get(manifest.inputs[i])!.dtype === F && i !== 'target'), ...weights];
  builderOptions.simplify = simplify;
  const derived = deriveGradientGraph(model, { loss: manifest.loss, wrt, allowUnused: true });
  builderOptions.simplify = true;
  const session = await ort.InferenceSession.create(serializeModel(derived.model));
  const feeds: Record<string, ort.Tensor> = {};
  for (const [input, key] of Object.entries(manifest.inputs as Record<string, string>)) {
    const t = reference.get(key)!;
    feeds[input] =
      t.dtype === DataType.INT64 ? new ort.Tensor('int64', t.data as BigInt64Array, t.dims) : new ort.Tensor('float32', t.data as Float32Array, t.dims);
  }
  for (const w of weights) {
    const t = floatInit(model, w);
    feeds[w] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
  }
  const out = await session.run(feeds);
  await session.release();
  return { nodes: derived.model.graph.nodes.length, grads: Object.fromEntries(wrt.map((t) => [t, out[derived.gradientOutputs[t]!]!.data as Float32Array])) };
}

describe('derived training graphs with and without simplification agree', () => {
  // Both graphs do the same arithmetic; onnxruntime may still fuse them differently (e.g. a shared
  // Transpose folded into one MatMul but not another), which reorders float32 sums: 1e-5 of each tensor's
  // scale allows that, while a wrong rewiring (a wrong axis or operand) is off by O(1).
  test.each(['unet', 'text_encoder'])('%s', async (name) => {
    const plain = await gradients(name, false),
      simplified = await gradients(name, true);
    expect(simplified.nodes).toBeLessThan(plain.nodes);
    const bad: string[] = [];
    for (const [t, g] of Object.entries(plain.grads)) {
      const h = simplified.grads[t]!;
      let diff = 0,
        scale = 1e-30;
      for (let i = 0; i < g.length; i++) {
        diff = Math.max(diff, Math.abs(g[i]! - h[i]!));
        scale = Math.max(scale, Math.abs(g[i]!));
      }
      if (!(diff / scale <= 1e-5)) bad.push(`${t}: ${diff / scale}`);
    }
    expect(bad).toEqual([]);
  });
});
