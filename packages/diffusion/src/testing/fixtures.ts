/**
 * Test access to the PyTorch fixtures of packages/diffusion/fixtures (made by scripts/export_fixtures.py)
 * and a small onnxruntime runner for edited models (all fixture weights are inline, so models go as bytes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Graph, loadModel, readSafetensors, serializeModel, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';

export const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

export interface Fixture<M> {
  model: OnnxModel;
  manifest: M;
  reference: Map<string, HostTensor>;
}

export function loadFixture<M extends { model: string; reference: string }>(name: string): Fixture<M> {
  const dir = path.join(fixturesDir, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as M;
  return { manifest, model: loadModel(path.join(dir, manifest.model)), reference: readSafetensors(path.join(dir, manifest.reference)).tensors };
}

export function toOrt(t: HostTensor | { dims: number[]; data: Float32Array | BigInt64Array | Int32Array }): ort.Tensor {
  const d = t.data;
  const type = d instanceof Float32Array ? 'float32' : d instanceof BigInt64Array ? 'int64' : d instanceof Int32Array ? 'int32' : undefined;
  if (!type) throw new Error('fixture tensor of an unexpected type');
  return new ort.Tensor(type, d as never, t.dims);
}

/** Run a model (inline weights) once; returns every output as float32 or raw ort data. */
export async function runModel(model: OnnxModel, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(serializeModel(model), { intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** The ort-training parity metric, max|a - b| / max|b|. */
export { relativeError } from '@dynasyn/ort-training';

/** The same graph with every node and intermediate tensor renamed `n<i>` / `t<i>`: no scope survives. */
export function stripNames(model: OnnxModel): OnnxModel {
  const g = model.graph;
  const keep = new Set([...g.inputs.map((v) => v.name), ...g.outputs.map((v) => v.name)]);
  const rename = new Map<string, string>();
  const map = (x: string) => {
    if (!x || keep.has(x)) return x;
    let r = rename.get(x);
    if (!r) rename.set(x, (r = `t${rename.size}`));
    return r;
  };
  const graph = new Graph({
    name: 'g',
    nodes: g.nodes.map((n, i) => ({ ...n, name: `n${i}`, inputs: n.inputs.map(map), outputs: n.outputs.map(map) })),
    inputs: g.inputs.map((v) => ({ ...v })),
    outputs: g.outputs.map((v) => ({ ...v })),
    initializers: new Map([...g.initializers].map(([k, v]) => [map(k), { ...v, name: map(k) }])),
  });
  return { ...model, graph };
}

export { ort };
