/**
 * Placeholder surgery on the CLIP-style text encoder fixture (vocabulary 1000, start 998, end 999 = V-1, 77
 * tokens, width 32): placeholder rows behave exactly like table rows, only positions at or after a
 * placeholder can change (causal attention), pooling stays at the end token, and gradients reach only the
 * placeholder rows a prompt uses.
 */
import { DataType, Graph, deriveGradientGraph, initializerToHost, scalar, type HostTensor, type OnnxModel } from '@dynasyn/ort-training';
import { findTokenEmbedding, placeholderStartValues, withPlaceholderEmbeddings } from './placeholders.js';
import { NodeFactory, copyModel } from './edit.js';
import { isDiffusionError } from '../errors.js';
import { loadFixture, relativeError, runModel, toOrt, type Fixture, type ort } from '../testing/fixtures.js';

interface TextManifest {
  model: string;
  reference: string;
  vocabSize: number;
  bos: number;
  eos: number;
  maxLength: number;
  dim: number;
}

let fx: Fixture<TextManifest>;
beforeAll(() => {
  fx = loadFixture<TextManifest>('text_encoder');
});

const L = 77,
  D = 32,
  V = 1000,
  BOS = 998,
  EOS = 999;
const P = 2;

/** [BOS, ...tokens, EOS, EOS...] padded to 77. */
function prompt(tokens: number[]): number[] {
  const ids = [BOS, ...tokens, EOS];
  while (ids.length < L) ids.push(EOS);
  return ids;
}

const idsTensor = (rows: number[][], dtype: 'int64' | 'int32' = 'int64') =>
  toOrt({
    dims: [rows.length, L],
    data: dtype === 'int64' ? BigInt64Array.from(rows.flat().map(BigInt)) : Int32Array.from(rows.flat()),
  });
const floats = (t: ort.Tensor | undefined) => t!.data as Float32Array;
const placeholderFeed = (t: HostTensor) => toOrt({ dims: t.dims, data: t.data as Float32Array });

/** Rows [from, to) of a [B, 77, D] output, for batch item b. */
const positions = (x: Float32Array, b: number, from: number, to: number) => x.subarray((b * L + from) * D, (b * L + to) * D);

describe('withPlaceholderEmbeddings', () => {
  test('the raw fixture matches PyTorch (relative error < 1e-4)', async () => {
    const out = await runModel(fx.model, { input_ids: toOrt(fx.reference.get('input/input_ids')!) });
    expect(relativeError(floats(out.last_hidden_state), fx.reference.get('last_hidden_state')!.data as Float32Array)).toBeLessThan(1e-4);
    expect(relativeError(floats(out.pooler_output), fx.reference.get('pooler_output')!.data as Float32Array)).toBeLessThan(1e-4);
  });

  test('finds the token-embedding table and adds a [P, D] input', () => {
    const edited = withPlaceholderEmbeddings(fx.model, { numPlaceholders: P, baseVocabSize: V });
    expect(edited.tokenEmbedding).toEqual({ name: findTokenEmbedding(fx.model).name, vocabSize: V, rows: V, dim: D });
    expect(edited.model.graph.inputs.find((v) => v.name === edited.inputName)).toMatchObject({ dtype: DataType.FLOAT, shape: [P, D] });
    expect(fx.model.graph.inputs.some((v) => v.name === edited.inputName)).toBe(false); // the original is untouched
  });

  test('placeholder rows set to the rows of tokens t_i encode exactly like the prompt with t_i', async () => {
    const [t0, t1] = [42, 517];
    const edited = withPlaceholderEmbeddings(fx.model, { numPlaceholders: P, baseVocabSize: V });
    const start = placeholderStartValues(fx.model, [t0, t1]);
    const table = initializerToHost(fx.model.graph.initializers.get(edited.tokenEmbedding.name)!).data as Float32Array;
    expect(Array.from(start.data as Float32Array)).toEqual([...table.subarray(t0 * D, (t0 + 1) * D), ...table.subarray(t1 * D, (t1 + 1) * D)]);

    const withPlaceholders = [prompt([5, V, 7, V + 1, 9]), prompt([V + 1, 3])];
    const withTokens = [prompt([5, t0, 7, t1, 9]), prompt([t1, 3])];
    const ours = await runModel(edited.model, { input_ids: idsTensor(withPlaceholders), placeholder_embeddings: placeholderFeed(start) });
    const base = await runModel(fx.model, { input_ids: idsTensor(withTokens) });
    expect(relativeError(floats(ours.last_hidden_state), floats(base.last_hidden_state))).toBeLessThan(1e-6);
    // pooled at the end token, not at a placeholder (whose id exceeds every base id)
    expect(relativeError(floats(ours.pooler_output), floats(base.pooler_output))).toBeLessThan(1e-6);

    // a prompt without placeholders encodes as on the original model
    const plain = await runModel(edited.model, { input_ids: idsTensor(withTokens), placeholder_embeddings: placeholderFeed(start) });
    expect(relativeError(floats(plain.last_hidden_state), floats(base.last_hidden_state))).toBeLessThan(1e-6);
  });

  test('changing a placeholder row changes its position and later ones only (causal), pooling stays at the end token', async () => {
    const edited = withPlaceholderEmbeddings(fx.model, { numPlaceholders: P });
    const start = placeholderStartValues(fx.model, [42, 517]);
    const moved: HostTensor = { ...start, data: Float32Array.from(start.data as Float32Array, (v, i) => (i >= D ? v + 0.5 * Math.sin(i) : v)) }; // row 1 only (not a uniform shift: LayerNorm removes those)
    const ids = [prompt([5, V, 7, V + 1, 9])]; // placeholder 0 at position 2, placeholder 1 at position 4, end at 6
    const a = await runModel(edited.model, { input_ids: idsTensor(ids), placeholder_embeddings: placeholderFeed(start) });
    const b = await runModel(edited.model, { input_ids: idsTensor(ids), placeholder_embeddings: placeholderFeed(moved) });
    const [ha, hb] = [floats(a.last_hidden_state), floats(b.last_hidden_state)];
    expect(Array.from(positions(hb, 0, 0, 4))).toEqual(Array.from(positions(ha, 0, 0, 4)));
    for (const p of [4, 5, 6, 40]) expect(relativeError(positions(hb, 0, p, p + 1), positions(ha, 0, p, p + 1))).toBeGreaterThan(1e-3);
    expect(Array.from(floats(b.pooler_output))).toEqual(Array.from(positions(hb, 0, 6, 7)));
  });

  test('int32 input_ids work like int64', async () => {
    const m32 = copyModel(fx.model);
    m32.graph.inputs = m32.graph.inputs.map((v) => (v.name === 'input_ids' ? { ...v, dtype: DataType.INT32 } : v));
    const edited = withPlaceholderEmbeddings(m32, { numPlaceholders: P });
    const start = placeholderStartValues(fx.model, [42, 517]);
    const ids = [prompt([5, V, 7, V + 1, 9])];
    const a = await runModel(edited.model, { input_ids: idsTensor(ids, 'int32'), placeholder_embeddings: placeholderFeed(start) });
    const b = await runModel(withPlaceholderEmbeddings(fx.model, { numPlaceholders: P }).model, {
      input_ids: idsTensor(ids),
      placeholder_embeddings: placeholderFeed(start),
    });
    expect(Array.from(floats(a.last_hidden_state))).toEqual(Array.from(floats(b.last_hidden_state)));
    expect(Array.from(floats(a.pooler_output))).toEqual(Array.from(floats(b.pooler_output)));
  });

  test('ids reaching the table through Unsqueeze, Squeeze, Identity, Flatten and Casts (other exporters) are found and edited alike', async () => {
    const chained = copyModel(fx.model);
    const g = chained.graph;
    const f = new NodeFactory(g, chained, 'exporter');
    const axes = f.constant({ dtype: DataType.INT64, dims: [1], data: BigInt64Array.of(-1n) }, 'axes');
    let ids = f.add('Unsqueeze', ['input_ids', axes]);
    ids = f.add('Squeeze', [ids, axes]);
    ids = f.add('Identity', [ids]);
    ids = f.add('Flatten', [ids], { axis: 1 });
    ids = f.add('Cast', [f.add('Cast', [ids], { to: DataType.INT32 })], { to: DataType.INT64 });
    const table = findTokenEmbedding(fx.model).name;
    for (const n of g.nodes) if (n.opType === 'Gather' && n.inputs[0] === table) n.inputs = [table, ids];
    g.sortTopologically();
    const edited = withPlaceholderEmbeddings(chained, { numPlaceholders: P, baseVocabSize: V });
    const start = placeholderStartValues(fx.model, [42, 517]);
    const rows = [prompt([5, V, 7, V + 1, 9])];
    const a = await runModel(edited.model, { input_ids: idsTensor(rows), placeholder_embeddings: placeholderFeed(start) });
    const b = await runModel(withPlaceholderEmbeddings(fx.model, { numPlaceholders: P }).model, {
      input_ids: idsTensor(rows),
      placeholder_embeddings: placeholderFeed(start),
    });
    expect(Array.from(floats(a.last_hidden_state))).toEqual(Array.from(floats(b.last_hidden_state)));
  });

  test('gradient w.r.t. placeholder_embeddings: zero for unused rows, equal to finite differences on used ones', async () => {
    const edited = withPlaceholderEmbeddings(fx.model, { numPlaceholders: P });
    // loss = sum(last_hidden_state * R), R a fixed random projection
    const lossModel = copyModel(edited.model);
    lossModel.graph.addInput({ name: 'R', dtype: DataType.FLOAT, shape: [1, L, D] });
    const f = new NodeFactory(lossModel.graph, lossModel, 'test');
    f.add('ReduceSum', [f.add('Mul', ['last_hidden_state', 'R'])], { keepdims: 0 }, 'loss');
    lossModel.graph.addOutput({ name: 'loss', dtype: DataType.FLOAT, shape: [] });
    const derived = deriveGradientGraph(lossModel, { loss: 'loss', wrt: ['placeholder_embeddings'], inputShapes: { input_ids: [1, L], R: [1, L, D] } });

    let seed = 7;
    const R = Float32Array.from({ length: L * D }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
    const start = placeholderStartValues(fx.model, [42, 517]);
    const ids = idsTensor([prompt([5, V, 7, V, 9])]); // placeholder 0 twice, placeholder 1 unused
    const feeds = (pe: Float32Array) => ({ input_ids: ids, R: toOrt({ dims: [1, L, D], data: R }), placeholder_embeddings: toOrt({ dims: [P, D], data: pe }) });
    const out = await runModel(derived.model, feeds(start.data as Float32Array));
    const grad = floats(out[derived.gradientOutputs.placeholder_embeddings!]);
    expect(grad.subarray(D).every((g) => g === 0)).toBe(true);
    expect(grad.subarray(0, D).some((g) => Math.abs(g) > 1e-3)).toBe(true);

    const h = 1e-2;
    const loss = async (pe: Float32Array) => floats((await runModel(lossModel, feeds(pe))).loss)[0]!;
    for (const i of [3, 17]) {
      const plus = Float32Array.from(start.data as Float32Array);
      plus[i]! += h;
      const minus = Float32Array.from(start.data as Float32Array);
      minus[i]! -= h;
      const fd = ((await loss(plus)) - (await loss(minus))) / (2 * h);
      expect(Math.abs(fd - grad[i]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(grad[i]!)));
    }
  });

  test('errors name the culprit', () => {
    expect(() => withPlaceholderEmbeddings(fx.model, { numPlaceholders: P, baseVocabSize: 49408 })).toThrow(/1000 rows .*49408 tokens/);
    expect(() => withPlaceholderEmbeddings(fx.model, { numPlaceholders: 0 })).toThrow(/numPlaceholders/);
    expect(() => placeholderStartValues(fx.model, [V])).toThrow(/token id 1000 is outside/);
    const twice = withPlaceholderEmbeddings(fx.model, { numPlaceholders: P }).model;
    expect(() => withPlaceholderEmbeddings(twice, { numPlaceholders: P })).toThrow(/applied twice/);

    // a graph that reads input_ids but has no embedding table
    const g = new Graph({
      inputs: [{ name: 'input_ids', dtype: DataType.INT64, shape: [1, 4] }],
      outputs: [{ name: 'y', dtype: DataType.FLOAT, shape: [1, 4] }],
    });
    const noTable: OnnxModel = {
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: 'test',
      producerVersion: '0',
      graph: g,
      metadata: {},
      extra: {},
    };
    const bias = g.addConstant('bias', scalar(DataType.FLOAT, 1));
    g.addNode({
      opType: 'Add',
      inputs: [
        g.addNode({ opType: 'Cast', inputs: ['input_ids'], outputs: ['f'], attributes: [{ name: 'to', type: 2, i: DataType.FLOAT }] }).outputs[0]!,
        bias,
      ],
      outputs: ['y'],
    });
    let err: unknown;
    try {
      withPlaceholderEmbeddings(noTable, { numPlaceholders: 1 });
    } catch (e) {
      err = e;
    }
    expect(isDiffusionError(err, 'BAD_MODEL')).toBe(true);
    expect((err as Error).message).toMatch(/no token-embedding lookup found: no Gather reads a float \[V, D\] initializer at input_ids/);
    expect(() => withPlaceholderEmbeddings(noTable, { numPlaceholders: 1, inputIdsName: 'tokens' })).toThrow(/no input tokens \(inputs: input_ids\)/);
  });
});
