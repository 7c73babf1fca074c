import { buildModel, randomValues, run, session, type TestNode } from './testing/gradcheck.js';
import { deriveGradientGraph } from './autodiff.js';
import { inferTypes } from './infer.js';
import { DataType, elementSize, fromNumbers, numel, type HostTensor } from './tensor.js';

// Reference: the same graph derived without the rewrite (its rules are checked against central differences
// in ops/*.test.ts). DOUBLE, so "the same function" can be asserted to 1e-12.
const D = DataType.DOUBLE;

interface Case {
  B: number;
  T: number;
  Tk: number;
  d: number;
  layout: 'batch-heads' | 'heads-axis';
  maskDims?: number[];
  secondReader?: boolean;
}

/** O = Cast(softmax(Q K^T * 0.5 + mask)) @ V, loss = sum(O * O) (+ sum of P's row maxima when P has a second reader). */
function attentionModel(c: Case) {
  const lead = c.layout === 'batch-heads' ? [c.B] : [c.B, 2];
  const qd = [...lead, c.T, c.d],
    kd = [...lead, c.Tk, c.d];
  const rank = qd.length;
  const perm = rank === 3 ? [0, 2, 1] : [0, 1, 3, 2];
  const nodes: TestNode[] = [
    { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm } },
    { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
    { op: 'Mul', inputs: ['qk', 'half'], outputs: ['scaled'] },
    ...(c.maskDims ? [{ op: 'Add', inputs: ['mask', 'scaled'], outputs: ['s'] }] : [{ op: 'Identity', inputs: ['scaled'], outputs: ['s'] }]),
    { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
    { op: 'Cast', inputs: ['p'], outputs: ['pc'], attrs: { to: D } },
    { op: 'MatMul', inputs: ['pc', 'v'], outputs: ['o'] },
    { op: 'Mul', inputs: ['o', 'o'], outputs: ['oo'] },
    { op: 'ReduceSum', inputs: ['oo'], outputs: ['l1'], attrs: { keepdims: 0 } },
    ...(c.secondReader
      ? [
          { op: 'ReduceMax', inputs: ['p'], outputs: ['pmax'], attrs: { axes: [rank - 1], keepdims: 0 } },
          { op: 'ReduceSum', inputs: ['pmax'], outputs: ['l2'], attrs: { keepdims: 0 } },
          { op: 'Add', inputs: ['l1', 'l2'], outputs: ['loss'] },
        ]
      : [{ op: 'Identity', inputs: ['l1'], outputs: ['loss'] }]),
  ];
  const constants: Record<string, HostTensor> = { half: fromNumbers(D, [], [0.5]) };
  if (c.maskDims) constants.mask = fromNumbers(D, c.maskDims, randomValues(numel(c.maskDims), 40, -3, 0));
  const inputs = [
    { name: 'q', dtype: D, dims: qd },
    { name: 'k', dtype: D, dims: kd },
    { name: 'v', dtype: D, dims: kd },
  ];
  const model = buildModel({ inputs, constants, nodes, outputs: ['loss'], opset: 17 });
  const feeds = Object.fromEntries(inputs.map((v, i) => [v.name, fromNumbers(D, v.dims, randomValues(numel(v.dims), 31 + i, -2, 2))]));
  const probsBytes = numel([...lead, c.T, c.Tk]) * elementSize(D);
  return { model, feeds, probsBytes };
}

async function compare(c: Case, limit: (probsBytes: number) => number, recomputeAbove?: number) {
  const { model, feeds, probsBytes } = attentionModel(c);
  const wrt = ['q', 'k', 'v'];
  const plain = deriveGradientGraph(model, { loss: 'loss', wrt });
  const chunked = deriveGradientGraph(model, {
    loss: 'loss',
    wrt,
    chunkAttentionAbove: limit(probsBytes),
    ...(recomputeAbove !== undefined ? { recomputeAbove } : {}),
  });
  const [a, b] = [await run(await session(plain.model), feeds), await run(await session(chunked.model), feeds)];
  const maxDiff = (x: number[], y: number[]) => Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
  const diffs = {
    loss: maxDiff(a.loss!, b.loss!),
    ...Object.fromEntries(wrt.map((t) => [t, maxDiff(a[plain.gradientOutputs[t]!]!, b[chunked.gradientOutputs[t]!]!)])),
  };
  const g = chunked.model.graph;
  const { types } = inferTypes(g, { opset: 17 });
  const softmaxBytes = g.nodes.filter((n) => n.opType === 'Softmax').map((n) => numel(types.get(n.outputs[0]!)!.dims) * elementSize(D));
  return { diffs, softmaxBytes, probsBytes, graph: g };
}

describe('attention in blocks of queries (chunkAttentionAbove)', () => {
  // the limit allows `rowsPerBlock` query rows: blocks = ceil(T / rowsPerBlock)
  const rowsLimit = (c: Case, rowsPerBlock: number) => (bytes: number) => (bytes / c.T) * rowsPerBlock + 1;
  test.each<[string, Case, number, number]>([
    ['heads folded into the batch, 7 rows in 3 uneven blocks', { B: 2, T: 7, Tk: 5, d: 3, layout: 'batch-heads' }, 3, 3],
    ['a heads axis and an additive mask over the keys [1, 1, 1, Tk]', { B: 2, T: 8, Tk: 6, d: 4, layout: 'heads-axis', maskDims: [1, 1, 1, 6] }, 2, 4],
    ['one row per block', { B: 1, T: 4, Tk: 4, d: 2, layout: 'batch-heads' }, 1, 4],
  ])('%s: the same loss and gradients, and no softmax as large as the limit', async (_, c, rowsPerBlock, blocks) => {
    const limit = rowsLimit(c, rowsPerBlock);
    const r = await compare(c, limit);
    for (const [name, diff] of Object.entries(r.diffs)) expect([name, diff < 1e-12]).toEqual([name, true]);
    const forward = r.graph.nodes.filter((n) => n.opType === 'Softmax' && !n.name.includes('recompute'));
    expect(forward).toHaveLength(blocks);
    expect(Math.max(...r.softmaxBytes)).toBeLessThan(limit(r.probsBytes));
  });

  test('with recomputeAbove as well: the same gradients, and no block probabilities read by the backward pass', async () => {
    const c: Case = { B: 2, T: 9, Tk: 5, d: 3, layout: 'batch-heads' };
    const r = await compare(c, rowsLimit(c, 3), 0);
    for (const diff of Object.values(r.diffs)) expect(diff).toBeLessThan(1e-12);
    const forwardProbs = new Set(r.graph.nodes.filter((n) => n.opType === 'Softmax' && !n.name.includes('recompute')).map((n) => n.outputs[0]!));
    expect(forwardProbs.size).toBe(3);
    expect(r.graph.nodes.filter((n) => n.name.startsWith('grad/') && n.inputs.some((x) => forwardProbs.has(x)))).toEqual([]);
  });

  test.each<[string, Case]>([
    ['probabilities read by the loss too', { B: 2, T: 6, Tk: 5, d: 3, layout: 'batch-heads', secondReader: true }],
    ['a mask that varies along the queries', { B: 2, T: 6, Tk: 5, d: 3, layout: 'batch-heads', maskDims: [1, 6, 5] }],
  ])('left as it is when the pattern does not hold (%s), and still the same function', async (_, c) => {
    const r = await compare(c, rowsLimit(c, 2));
    for (const diff of Object.values(r.diffs)) expect(diff).toBeLessThan(1e-12);
    expect(r.graph.nodes.filter((n) => n.opType === 'Softmax' && !n.name.includes('recompute'))).toHaveLength(1);
  });

  test('attention smaller than the limit is left whole', async () => {
    const r = await compare({ B: 2, T: 6, Tk: 5, d: 3, layout: 'batch-heads' }, (bytes) => bytes + 1);
    for (const diff of Object.values(r.diffs)) expect(diff).toBe(0);
    expect(r.graph.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(1);
    expect(r.graph.nodes.filter((n) => n.opType === 'Split' && n.name.includes('chunk'))).toEqual([]);
  });
});
