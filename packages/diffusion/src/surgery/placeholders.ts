/**
 * Placeholder tokens in the text encoder (METHOD.md "Inputs", "Two phases"): ids V..V+P-1 read their rows
 * from a new graph input `placeholder_embeddings [P, D]` while every other id reads the frozen table [V, D].
 *
 *   base  = Gather(table, Min(ids, V-1))
 *   extra = Gather(placeholder_embeddings, Max(ids - V, 0))
 *   embed = Where(Unsqueeze(ids < V, -1), base, extra)
 *
 * The table is never concatenated with the placeholder rows (SD's is 49408 x 1024, copying it per run would
 * cost more than the rest of the encoder), and a training graph derived w.r.t. `placeholder_embeddings`
 * gets gradients through the small [P, D] input only.
 */
import {
  allocate,
  elementSize,
  isExternal,
  isFloat,
  readExternal,
  scalar,
  type AttrValue,
  type Graph,
  type HostTensor,
  type Initializer,
  type Node,
  type OnnxModel,
} from '@dynasyn/ort-training';
import { DiffusionError } from '../errors.js';
import { NodeFactory, copyModel, int64Tensor } from './edit.js';

export const PLACEHOLDER_INPUT = 'placeholder_embeddings';

export interface PlaceholderOptions {
  /** Number of placeholder tokens P (ids V..V+P-1). */
  numPlaceholders: number;
  /**
   * Vocabulary size of the tokenizer without placeholders: placeholder ids start here. The embedding table
   * must have at least this many rows (default: its row count).
   */
  baseVocabSize?: number;
  /** Name of the token-id input (default `input_ids`). */
  inputIdsName?: string;
}

export interface TokenEmbeddingInfo {
  /** Initializer holding the table [rows, dim]. */
  name: string;
  /** Ids below this read the table (the tokenizer's base vocabulary; placeholder ids start here). */
  vocabSize: number;
  /** Rows of the table (more than vocabSize when the exporter padded it). */
  rows: number;
  dim: number;
}

export interface PlaceholderTextEncoder {
  model: OnnxModel;
  inputName: typeof PLACEHOLDER_INPUT;
  tokenEmbedding: TokenEmbeddingInfo;
}

interface EmbeddingLookup {
  gather: Node;
  table: Initializer;
  /** The ids as the Gather sees them (input_ids or a Cast of it). */
  ids: string;
  idsDtype: number;
  /** input_ids and the tensors that are input_ids cast to another integer type. */
  idTensors: Map<string, number>;
}

/**
 * Ops through which the token ids reach the embedding Gather with their values unchanged: transformers'
 * CLIPTextTransformer reshapes them first (`input_ids.view(-1, L)`), other exporters flatten, squeeze,
 * unsqueeze, cast (int32 <-> int64) or pass them through an Identity. Min appears in an already edited graph.
 */
const ID_PRESERVING = new Set(['Cast', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Min']);

/** input_ids plus every tensor that holds its values reshaped or cast (see ID_PRESERVING), with element types. */
function idTensors(graph: Graph, inputIdsName: string): Map<string, number> {
  const input = graph.inputs.find((v) => v.name === inputIdsName);
  if (!input) {
    throw new DiffusionError('BAD_MODEL', `the text encoder has no input ${inputIdsName} (inputs: ${graph.inputs.map((v) => v.name).join(', ') || 'none'})`);
  }
  const ids = new Map([[input.name, input.dtype]]);
  for (const n of graph.topologicalOrder()) {
    const x = n.inputs[0];
    if (!x || !ids.has(x) || !ID_PRESERVING.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    if (n.opType === 'Cast') {
      const to = n.attributes.find((a) => a.name === 'to')?.i;
      if (to !== undefined && to !== null && INTEGER_TYPES.has(Number(to))) ids.set(n.outputs[0]!, Number(to));
    } else {
      ids.set(n.outputs[0]!, ids.get(x)!);
    }
  }
  return ids;
}

/** ONNX integer element types (a Cast of the ids to float is no longer an index). */
const INTEGER_TYPES = new Set([2, 3, 4, 5, 6, 7, 12, 13]);

function findEmbeddingLookup(graph: Graph, inputIdsName: string, baseVocabSize?: number): EmbeddingLookup {
  const ids = idTensors(graph, inputIdsName);
  const candidates: EmbeddingLookup[] = [];
  for (const n of graph.nodes) {
    if (n.opType !== 'Gather' || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    const table = graph.initializers.get(n.inputs[0] ?? '');
    const idx = n.inputs[1] ?? '';
    const axis = Number(n.attributes.find((a) => a.name === 'axis')?.i ?? 0);
    if (!table || !ids.has(idx) || axis !== 0 || table.dims.length !== 2 || !isFloat(table.dtype)) continue;
    candidates.push({ gather: n, table, ids: idx, idsDtype: ids.get(idx)!, idTensors: ids });
  }
  if (candidates.length === 0) {
    throw new DiffusionError(
      'BAD_MODEL',
      `no token-embedding lookup found: no Gather reads a float [V, D] initializer at ${inputIdsName} (directly or through ${[...ID_PRESERVING].filter((o) => o !== 'Min').join('/')})`,
    );
  }
  if (baseVocabSize === undefined) {
    if (candidates.length > 1)
      throw new DiffusionError(
        'BAD_MODEL',
        `several Gathers read a [V, D] table at ${inputIdsName}: ${candidates.map((c) => c.table.name).join(', ')}; give baseVocabSize to pick one`,
      );
    return candidates[0]!;
  }
  // A table may have more rows than the tokenizer has tokens (exporters pad it, e.g. to a multiple of 64):
  // as in transformers, tokens added to the tokenizer take ids from its size on, and the spare rows go unused.
  const exact = candidates.filter((c) => c.table.dims[0] === baseVocabSize);
  const matching = exact.length ? exact : candidates.filter((c) => c.table.dims[0]! > baseVocabSize);
  if (matching.length === 0) {
    throw new DiffusionError(
      'BAD_MODEL',
      `the token-embedding table has ${candidates.map((c) => `${c.table.dims[0]} rows (${c.table.name})`).join(', ')}, fewer than the tokenizer's ${baseVocabSize} tokens: the tokenizer does not belong to this text encoder`,
    );
  }
  if (matching.length > 1) {
    throw new DiffusionError(
      'BAD_MODEL',
      `several Gathers read a [V, D] table at ${inputIdsName}: ${matching.map((c) => c.table.name).join(', ')}; cannot tell which is the token embedding`,
    );
  }
  return matching[0]!;
}

/** The token-embedding table of a text encoder (original or already edited). */
export function findTokenEmbedding(textEncoder: OnnxModel, options: { baseVocabSize?: number; inputIdsName?: string } = {}): TokenEmbeddingInfo {
  const { table } = findEmbeddingLookup(textEncoder.graph, options.inputIdsName ?? 'input_ids', options.baseVocabSize);
  return { name: table.name, vocabSize: options.baseVocabSize ?? table.dims[0]!, rows: table.dims[0]!, dim: table.dims[1]! };
}

/**
 * A copy of `textEncoder` with a graph input `placeholder_embeddings [P, D]` holding the rows of ids V..V+P-1.
 * Ids of V+P or more make onnxruntime fail (an out-of-range Gather), as they would on the original model.
 */
export function withPlaceholderEmbeddings(textEncoder: OnnxModel, options: PlaceholderOptions): PlaceholderTextEncoder {
  const P = options.numPlaceholders;
  if (!Number.isInteger(P) || P < 1) throw new DiffusionError('BAD_ARGUMENT', `numPlaceholders must be a positive integer, got ${P}`);
  const inputIdsName = options.inputIdsName ?? 'input_ids';
  const model = copyModel(textEncoder);
  const g = model.graph;
  if (g.inputs.some((v) => v.name === PLACEHOLDER_INPUT)) {
    throw new DiffusionError('BAD_MODEL', `the text encoder already has an input ${PLACEHOLDER_INPUT} (placeholder surgery applied twice?)`);
  }
  const lookup = findEmbeddingLookup(g, inputIdsName, options.baseVocabSize);
  const [rows, D] = lookup.table.dims as [number, number];
  const V = options.baseVocabSize ?? rows; // the first placeholder id
  const f = new NodeFactory(g, model, 'placeholders');
  const idConst = (v: number, dtype: number, hint: string) => f.constant(scalar(dtype, v), hint);

  g.addInput({ name: PLACEHOLDER_INPUT, dtype: lookup.table.dtype, shape: [P, D] });
  const t = lookup.idsDtype;
  const ids = lookup.ids;
  const nodes: Node[] = [];
  const emit = (op: string, inputs: string[], a: Record<string, AttrValue> = {}, out?: string) => {
    const made = f.make(op, inputs, a, out);
    nodes.push(made.node);
    return made.out;
  };
  const vocab = idConst(V, t, 'vocab_size');
  const base = emit('Gather', [lookup.table.name, emit('Min', [ids, idConst(V - 1, t, 'last_base_id')])], { axis: 0 });
  const extraIdx = emit('Max', [emit('Sub', [ids, vocab]), idConst(0, t, 'zero')]);
  const extra = emit('Gather', [PLACEHOLDER_INPUT, extraIdx], { axis: 0 });
  const isBase = emit('Less', [ids, vocab]);
  const isBaseRow = f.opset >= 13 ? emit('Unsqueeze', [isBase, f.constant(int64Tensor([-1]), 'axes')]) : emit('Unsqueeze', [isBase], { axes: [-1] });
  emit('Where', [isBaseRow, base, extra], {}, lookup.gather.outputs[0]!);
  g.replaceNode(lookup.gather, nodes);

  clampArgMaxInputs(g, f, lookup, V);
  g.sortTopologically();
  return { model, inputName: PLACEHOLDER_INPUT, tokenEmbedding: { name: lookup.table.name, vocabSize: V, rows, dim: D } };
}

/**
 * CLIP pools at ArgMax(input_ids), the end token being the largest base id. A placeholder id (>= V) would win
 * that ArgMax, and clamping it to V-1 would tie with the end token (ArgMax keeps the first): placeholders are
 * mapped to 0 there, so the pooled position is the one the class-word prompt has.
 */
function clampArgMaxInputs(g: Graph, f: NodeFactory, lookup: EmbeddingLookup, V: number): void {
  for (const n of [...g.nodes]) {
    const x = n.inputs[0];
    if (n.opType !== 'ArgMax' || !x || !lookup.idTensors.has(x)) continue;
    const t = lookup.idTensors.get(x)!;
    const isBase = f.make('Less', [x, f.constant(scalar(t, V), 'vocab_size')]);
    const masked = f.make('Where', [isBase.out, x, f.constant(scalar(t, 0), 'zero')]);
    const argmax = { ...n, inputs: [masked.out, ...n.inputs.slice(1)] };
    g.replaceNode(n, [isBase.node, masked.node, argmax]);
  }
}

/**
 * Rows `tokenIds` of the token-embedding table as a [P, D] tensor: start values of placeholder_embeddings
 * (METHOD.md: each placeholder starts at the embedding of its class word's first sub-token). Only those rows
 * are read from external data.
 */
export function placeholderStartValues(
  textEncoder: OnnxModel,
  tokenIds: number[],
  options: { baseVocabSize?: number; inputIdsName?: string } = {},
): HostTensor {
  const { table } = findEmbeddingLookup(textEncoder.graph, options.inputIdsName ?? 'input_ids', options.baseVocabSize);
  const [V, D] = table.dims as [number, number];
  const rowBytes = D * elementSize(table.dtype);
  const out = allocate(table.dtype, tokenIds.length * D);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  tokenIds.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new DiffusionError('BAD_ARGUMENT', `token id ${id} is outside the embedding table ${table.name} (${V} rows)`);
    const row = isExternal(table.data)
      ? readExternal({ path: table.data.path, offset: table.data.offset + id * rowBytes, length: rowBytes })
      : table.data.subarray(id * rowBytes, (id + 1) * rowBytes);
    outBytes.set(row, i * rowBytes);
  });
  return { dtype: table.dtype, dims: [tokenIds.length, D], data: out };
}
