/**
 * float16 models (optimum's `--fp16` export) computed in float32. onnxruntime's CPU provider has float16
 * kernels for only part of the ops a training graph needs (its gradient ops, reductions, the losses), and
 * float32 is what the host feeds and what the optimizer updates. So for training the graph is rewritten to
 * compute in float32 while the weights stay float16 in their files (each read through a Cast, which
 * onnxruntime folds once at load):
 *
 * - every float16 initializer W is read as Cast(W, float);
 * - Cast(x, to=float16) becomes Cast(x, to=float); float16 Constant / ConstantOfShape values become float;
 * - float16 graph inputs and outputs become float.
 */
import { DataType, fromNumbers, hostToTensorProto, tensorProtoToHost, toNumbers, type Node, type OnnxModel } from '@dynasyn/ort-training';

type AttributeProto = Node['attributes'][number];
const castTo = (n: Node): number => Number(n.attributes.find((a) => a.name === 'to')?.i);
import { copyModel } from './edit.js';

/** Does `model` compute in float16 (float16 inputs or outputs, Casts to float16, float16 weights read as such)? */
export function usesFloat16(model: OnnxModel): boolean {
  const g = model.graph;
  const half = new Set([...g.initializers.values()].filter((i) => i.dtype === DataType.FLOAT16).map((i) => i.name));
  return (
    [...g.inputs, ...g.outputs].some((v) => v.dtype === DataType.FLOAT16) ||
    g.nodes.some((n) => (n.opType === 'Cast' ? castTo(n) === DataType.FLOAT16 : n.inputs.some((x) => half.has(x))))
  );
}

const toFloatTensor = (t: NonNullable<AttributeProto['t']>) => {
  const host = tensorProtoToHost(t);
  return host.dtype === DataType.FLOAT16 ? hostToTensorProto(t.name ?? '', fromNumbers(DataType.FLOAT, host.dims, toNumbers(host))) : t;
};

/** `model` itself when it uses no float16; else a copy that computes in float32 (see the file header). */
export function withFloat32Compute(model: OnnxModel): OnnxModel {
  if (!usesFloat16(model)) return model;
  const copy = copyModel(model);
  const g = copy.graph;
  const readAsFloat = new Map<string, string>();
  for (const init of g.initializers.values()) {
    if (init.dtype !== DataType.FLOAT16) continue;
    readAsFloat.set(init.name, g.uniqueName(`${init.name}/float32`));
  }
  g.nodes = g.nodes.map((n) => {
    const inputs = n.inputs.map((x) => readAsFloat.get(x) ?? x);
    const attributes = n.attributes.map((a): AttributeProto => {
      if (n.opType === 'Cast' && a.name === 'to' && castTo(n) === DataType.FLOAT16) return { ...a, i: DataType.FLOAT };
      if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && a.name === 'value' && a.t?.data_type === DataType.FLOAT16)
        return { ...a, t: toFloatTensor(a.t) };
      return a;
    });
    return { ...n, inputs, attributes };
  });
  for (const [name, asFloat] of readAsFloat) {
    g.addNode({
      name: `${asFloat}/Cast`,
      opType: 'Cast',
      domain: '',
      inputs: [name],
      outputs: [asFloat],
      attributes: [{ name: 'to', type: 2, i: DataType.FLOAT }],
    });
  }
  const f32 = <T extends { dtype: number }>(v: T): T => (v.dtype === DataType.FLOAT16 ? { ...v, dtype: DataType.FLOAT } : v);
  g.inputs = g.inputs.map(f32);
  g.outputs = g.outputs.map(f32);
  for (const [name, v] of g.valueInfo) if (v.dtype === DataType.FLOAT16) g.valueInfo.set(name, f32(v));
  g.sortTopologically();
  return copy;
}
