/**
 * The tiny bundle's text encoder rewritten the way other exporters write theirs (not part of the build), for
 * personalizations on bundles nobody here made. The shapes follow the torch.onnx exports in
 * packages/diffusion/fixtures/text_encoder_variants (their manifests record each op pattern):
 * - `fuseProjections`: torch.nn.MultiheadAttention's fused input projection, one x W [D, 3D] sliced into
 *   q, k and v (OpenCLIP's tower), with node names that say nothing, so only the structure tells;
 * - `padTokenTable`: a token-embedding table with rows past the tokenizer's vocabulary.
 */
import { DataType, Graph, fromNumbers, initializerFromHost, initializerToHost, readExternal, type Node, type OnnxModel } from '@dynasyn/ort-training';
import { GaussianRng } from '@dynasyn/diffusion';

const copy = (model: OnnxModel): OnnxModel => {
  const s = model.graph;
  const graph = new Graph({
    name: s.name,
    nodes: s.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })),
    inputs: [...s.inputs],
    outputs: [...s.outputs],
    initializers: new Map(s.initializers),
    valueInfo: new Map(s.valueInfo),
    extra: { ...s.extra },
  });
  return { ...model, graph };
};

const weight = (g: Graph, n: Node) => initializerToHost(g.initializers.get(n.inputs[1]!)!, readExternal);

/** Each layer's q/k/v MatMuls (same input x, weights [D, D]) become one MatMul by [D, 3D] and three Slices. */
export function fuseProjections(model: OnnxModel): OnnxModel {
  const out = copy(model);
  const g = out.graph;
  const byRole = (role: string) => g.nodes.filter((n) => n.opType === 'MatMul' && new RegExp(`/${role}/`).test(n.name));
  const [qs, ks, vs] = [byRole('q_proj'), byRole('k_proj'), byRole('v_proj')];
  if (qs.length === 0 || qs.length !== ks.length || qs.length !== vs.length)
    throw new Error(`fuseProjections: found ${qs.length}/${ks.length}/${vs.length} q/k/v MatMuls`);
  const int64 = (name: string, v: number) => g.addConstant(name, fromNumbers(DataType.INT64, [1], [v]));
  qs.forEach((q, layer) => {
    const k = ks[layer]!,
      v = vs[layer]!;
    const [wq, wk, wv] = [weight(g, q), weight(g, k), weight(g, v)];
    const [D, E] = wq.dims as [number, number];
    const fused = new Float32Array(D * 3 * E);
    for (let i = 0; i < D; i++) {
      [wq, wk, wv].forEach((w, part) => fused.set((w.data as Float32Array).subarray(i * E, (i + 1) * E), i * 3 * E + part * E));
    }
    const wName = `onnx::MatMul_fused_${layer}`;
    g.addInitializer(initializerFromHost(wName, { dtype: DataType.FLOAT, dims: [D, 3 * E], data: fused }));
    const proj = `fused_proj_${layer}`;
    const nodes: Node[] = [
      { name: `/blocks.${layer}/attn/MatMul`, opType: 'MatMul', domain: '', inputs: [q.inputs[0]!, wName], outputs: [proj], attributes: [] },
    ];
    [q, k, v].forEach((n, part) =>
      nodes.push({
        name: `/blocks.${layer}/attn/Slice_${part}`,
        opType: 'Slice',
        domain: '',
        inputs: [
          proj,
          int64(`fused_start_${layer}_${part}`, part * E),
          int64(`fused_end_${layer}_${part}`, (part + 1) * E),
          int64(`fused_axis_${layer}_${part}`, -1),
        ],
        outputs: [n.outputs[0]!],
        attributes: [],
      }),
    );
    g.nodes = g.nodes.filter((n) => n !== q && n !== k && n !== v);
    g.nodes.push(...nodes);
    for (const n of [q, k, v]) g.initializers.delete(n.inputs[1]!);
  });
  // names that say nothing, as another exporter's: only the structure around each Softmax finds the projections
  g.nodes = g.nodes.map((n, i) => (/(q|k|v|out)_proj/.test(n.name) ? { ...n, name: `/blocks/node_${i}` } : n));
  g.sortTopologically();
  return out;
}

/** The token table with `extra` random rows appended (ids the tokenizer never produces). */
export function padTokenTable(model: OnnxModel, tableName: string, extra: number, seed = 0): OnnxModel {
  const out = copy(model);
  const t = initializerToHost(out.graph.initializers.get(tableName)!, readExternal);
  const [V, D] = t.dims as [number, number];
  const data = new Float32Array((V + extra) * D);
  data.set(t.data as Float32Array);
  data.set(new GaussianRng(seed).fill(extra * D), V * D);
  out.graph.initializers.set(tableName, initializerFromHost(tableName, { dtype: DataType.FLOAT, dims: [V + extra, D], data }));
  return out;
}
