/**
 * Reading and writing ONNX models. Weights in external data files are referenced, never read: a derived
 * graph of the 3.4 GB SD 2.1 UNet costs a few MB of JS memory. On save, external data files are hard-linked
 * (or copied when the file system refuses) next to the new model, because onnxruntime refuses external
 * data paths that leave the model's directory, and resolves symbolic links before checking.
 */
import fs from 'node:fs';
import path from 'node:path';
import Long from 'long';
import { OrtTrainingError } from './errors.js';
import { Graph, type Initializer, type ValueInfo, type Node, type Dim, isExternal, type ExternalRef } from './graph.js';
import { ModelProtoType } from './onnx/schema.js';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, Int64 } from './onnx/types.js';
import { DataType, dataTypeName, elementSize, fromNumbers, numel, tensorBytes, allocate, type HostTensor } from './tensor.js';

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  graph: Graph;
  metadata: Record<string, string>;
  /** Fields kept verbatim for round trips (domain, model_version, doc_string, functions, training_info). */
  extra: Partial<ModelProto>;
}

export const int64 = (v: Int64 | undefined | null): number => (v === undefined || v === null ? 0 : typeof v === 'number' ? v : (v as Long).toNumber());

/** Opset version of the default ONNX domain. */
export function defaultOpset(model: OnnxModel): number {
  return model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
}

// ---------- TensorProto <-> Initializer ----------

export function tensorProtoToHost(t: TensorProto, name = t.name ?? '?'): HostTensor {
  const dtype = t.data_type ?? 0;
  const dims = (t.dims ?? []).map(int64);
  const n = numel(dims);
  if (t.raw_data && t.raw_data.byteLength > 0) {
    const bytes = t.raw_data;
    if (bytes.byteLength !== n * elementSize(dtype))
      throw new OrtTrainingError(
        'BAD_TENSOR',
        `tensor ${name}: raw_data holds ${bytes.byteLength} bytes, ${dataTypeName(dtype)}[${dims}] needs ${n * elementSize(dtype)}`,
      );
    const data = allocate(dtype, n);
    new Uint8Array(data.buffer).set(bytes);
    return { dtype, dims, data };
  }
  const typed = typedFieldValues(t, dtype);
  if (typed.length !== n && !(n === 0)) throw new OrtTrainingError('BAD_TENSOR', `tensor ${name}: holds ${typed.length} values, shape [${dims}] needs ${n}`);
  if (dtype === DataType.INT64 || dtype === DataType.UINT64) {
    const data = allocate(dtype, n) as BigInt64Array;
    typed.forEach((v, i) => {
      data[i] = typeof v === 'number' ? BigInt(v) : BigInt((v as Long).toString());
    });
    return { dtype, dims, data };
  }
  if (dtype === DataType.FLOAT16 || dtype === DataType.BFLOAT16) {
    // int32_data holds the raw 16 bits for these types
    const data = allocate(dtype, n);
    typed.forEach((v, i) => {
      data[i] = Number(v);
    });
    return { dtype, dims, data };
  }
  return fromNumbers(
    dtype,
    dims,
    typed.map((v) => (typeof v === 'number' ? v : int64(v))),
  );
}

function typedFieldValues(t: TensorProto, dtype: number): Int64[] {
  switch (dtype) {
    case DataType.FLOAT:
      return t.float_data ?? [];
    case DataType.DOUBLE:
      return t.double_data ?? [];
    case DataType.INT64:
      return t.int64_data ?? [];
    case DataType.UINT64:
    case DataType.UINT32:
      return t.uint64_data ?? [];
    case DataType.STRING:
      throw new OrtTrainingError('UNSUPPORTED_DTYPE', `tensor ${t.name}: string tensors are not supported`);
    default:
      return t.int32_data ?? [];
  }
}

function externalRefOf(t: TensorProto, modelDir: string): ExternalRef {
  const kv = Object.fromEntries((t.external_data ?? []).map((e) => [e.key, e.value]));
  if (!kv.location) throw new OrtTrainingError('BAD_MODEL', `tensor ${t.name}: external data without a location`);
  const file = path.resolve(modelDir, kv.location);
  const dims = (t.dims ?? []).map(int64);
  const length = kv.length !== undefined ? Number(kv.length) : numel(dims) * elementSize(t.data_type ?? 0);
  const offset = kv.offset !== undefined ? Number(kv.offset) : 0;
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new OrtTrainingError(
      'MISSING_EXTERNAL_DATA',
      `tensor ${t.name}: external data file ${file} does not exist (location "${kv.location}" is relative to the model's directory)`,
    );
  }
  if (offset + length > size) {
    throw new OrtTrainingError(
      'MISSING_EXTERNAL_DATA',
      `tensor ${t.name}: external data file ${file} is ${size} bytes, too short for offset ${offset} + length ${length} (truncated?)`,
    );
  }
  return { path: file, offset, length };
}

function toInitializer(t: TensorProto, modelDir: string): Initializer {
  const name = t.name ?? '';
  const dtype = t.data_type ?? 0;
  const dims = (t.dims ?? []).map(int64);
  if (t.data_location === 1) return { name, dtype, dims, data: externalRefOf(t, modelDir) };
  if (t.raw_data && t.raw_data.byteLength > 0) {
    const expected = numel(dims) * elementSize(dtype);
    if (t.raw_data.byteLength !== expected) {
      throw new OrtTrainingError(
        'BAD_MODEL',
        `initializer ${name}: raw_data holds ${t.raw_data.byteLength} bytes, ${dataTypeName(dtype)}[${dims.join(',')}] needs ${expected}`,
      );
    }
    return { name, dtype, dims, data: t.raw_data };
  }
  return { name, dtype, dims, data: tensorBytes(tensorProtoToHost(t, name)) };
}

export function hostToTensorProto(name: string, t: HostTensor): TensorProto {
  return { name, dims: t.dims, data_type: t.dtype, raw_data: tensorBytes(t) };
}

// ---------- ValueInfo ----------

function toValueInfo(v: ValueInfoProto): ValueInfo {
  const tt = v.type?.tensor_type;
  const dims = tt?.shape?.dim;
  return {
    name: v.name ?? '',
    dtype: tt?.elem_type ?? 0,
    // decoded oneof members read their default (dim_value 0) when unset: test which one is really present
    shape: tt?.shape
      ? (dims ?? []).map((d): Dim => (d.dim_param ? d.dim_param : Object.hasOwn(d, 'dim_value') && d.dim_value !== null ? int64(d.dim_value) : null))
      : undefined,
  };
}

function fromValueInfo(v: ValueInfo): ValueInfoProto {
  if (!v.dtype) return { name: v.name }; // type unknown: let the runtime infer it
  const shape = v.shape ? { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})) } : undefined;
  return { name: v.name, type: { tensor_type: { elem_type: v.dtype, ...(shape ? { shape } : {}) } } };
}

// ---------- load ----------

/** Parse a model from its bytes. `modelDir` resolves external data locations. */
export function parseModel(bytes: Uint8Array, modelDir: string, label = 'model'): OnnxModel {
  let proto: ModelProto;
  try {
    proto = ModelProtoType.decode(bytes) as unknown as ModelProto;
  } catch (e) {
    throw new OrtTrainingError(
      'BAD_MODEL',
      `${label} is not a valid ONNX model (protobuf decoding failed: ${(e as Error).message}); the file may be truncated or corrupt`,
    );
  }
  if (!proto.graph || !(proto.graph.node?.length || proto.graph.output?.length)) {
    throw new OrtTrainingError('BAD_MODEL', `${label} is not a valid ONNX model: it has no graph`);
  }
  if (!proto.opset_import?.length) throw new OrtTrainingError('BAD_MODEL', `${label} is not a valid ONNX model: no opset_import`);
  const { ir_version, opset_import, producer_name, producer_version, graph, metadata_props, ...extra } = proto;
  return {
    irVersion: int64(ir_version),
    opsetImports: opset_import.map((o) => ({ domain: o.domain ?? '', version: int64(o.version) })),
    producerName: producer_name ?? '',
    producerVersion: producer_version ?? '',
    graph: toGraph(graph, modelDir),
    metadata: Object.fromEntries((metadata_props ?? []).map((e) => [e.key ?? '', e.value ?? ''])),
    extra: extra as Partial<ModelProto>,
  };
}

function toGraph(g: GraphProto, modelDir: string): Graph {
  const initializers = new Map<string, Initializer>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', toInitializer(t, modelDir));
  const nodes: Node[] = (g.node ?? []).map((n: NodeProto, i) => {
    const { input, output, name, op_type, domain, attribute, ...rest } = n;
    return {
      name: name || `${op_type}_${i}`,
      opType: op_type ?? '',
      domain: domain === 'ai.onnx' ? '' : (domain ?? ''),
      inputs: [...(input ?? [])],
      outputs: [...(output ?? [])],
      attributes: [...(attribute ?? [])],
      ...(Object.keys(rest).length ? { extra: rest as Record<string, unknown> } : {}),
    };
  });
  const { node: _n, name, initializer: _i, input, output, value_info, ...extra } = g;
  return new Graph({
    name: name ?? 'graph',
    nodes,
    inputs: (input ?? []).map(toValueInfo),
    outputs: (output ?? []).map(toValueInfo),
    initializers,
    valueInfo: new Map((value_info ?? []).map((v) => [v.name ?? '', toValueInfo(v)])),
    extra,
  });
}

/** Inline initializers of at least this many bytes are referenced in the model file instead of held (loadModel). */
export const INLINE_REFERENCE_MIN_BYTES = 1 << 20;

/**
 * Load a model file; weights in external data files are located and checked, not read. Large INLINE weights
 * (at least INLINE_REFERENCE_MIN_BYTES: SD 2.x's text encoder keeps 1.4 GB in its model.onnx) become
 * references into the file itself, as if they were external data at their raw_data offset: nothing holds
 * them in memory, and a derived model saved with saveModel links the source file instead of copying them.
 */
export function loadModel(file: string): OnnxModel {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new OrtTrainingError('BAD_ARGUMENT', `cannot read model ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const model = parseModel(bytes, path.dirname(path.resolve(file)), file);
  const source = path.resolve(file);
  for (const init of model.graph.initializers.values()) {
    const d = init.data;
    // protobufjs decodes bytes fields of a Buffer as views of it: the view's offset is the data's place in the file
    if (isExternal(d) || d.buffer !== bytes.buffer) continue;
    init.data =
      d.byteLength >= INLINE_REFERENCE_MIN_BYTES ? { path: source, offset: d.byteOffset - bytes.byteOffset, length: d.byteLength } : new Uint8Array(d); // a copy (Buffer#slice is a view): a view would keep the whole file's bytes alive (1.4 GB for SD 2.x's text encoder)
  }
  // so would the bytes decoded into node attributes (Constant values, string attributes); set in place, as
  // decoded messages keep their unset fields' defaults on their prototype
  const isView = (b: Uint8Array | null | undefined): b is Uint8Array => !!b && b.byteLength > 0 && b.buffer === bytes.buffer;
  const ownTensor = (t: { raw_data?: Uint8Array | null }) => {
    if (isView(t.raw_data)) t.raw_data = new Uint8Array(t.raw_data);
  };
  for (const n of model.graph.nodes) {
    for (const a of n.attributes) {
      if (isView(a.s)) a.s = new Uint8Array(a.s);
      if (a.t) ownTensor(a.t);
      a.tensors?.forEach(ownTensor);
      if (a.strings?.some(isView)) a.strings = a.strings.map((x) => (isView(x) ? new Uint8Array(x) : x));
    }
  }
  return model;
}

// ---------- save ----------

export interface SaveOptions {
  /**
   * Inline initializers above this many bytes are written to `<model>.data` beside the model (default:
   * only when the protobuf would exceed 1.5 GB, protobuf's 2 GB limit with room to spare).
   */
  externalizeAbove?: number;
}

/** Serialize to a file. External data stays external (hard-linked beside the output when it lies elsewhere). */
export function saveModel(model: OnnxModel, file: string, options: SaveOptions = {}): void {
  const outDir = path.dirname(path.resolve(file));
  fs.mkdirSync(outDir, { recursive: true });
  const linked = new Map<string, string>();
  const linkLocation = (src: string): string => {
    const known = linked.get(src);
    if (known) return known;
    // a weight referenced inside another model.onnx must not take the name of the file being written
    const own = new Set([path.basename(file), `${path.basename(file)}.data`]);
    const base = own.has(path.basename(src)) ? `${path.basename(path.dirname(src))}.${path.basename(src)}` : path.basename(src);
    let location = base;
    const dest = () => path.join(outDir, location);
    let n = 0;
    while (own.has(location) || (fs.existsSync(dest()) && !sameFile(dest(), src))) location = `${++n}_${base}`;
    if (!fs.existsSync(dest())) {
      try {
        fs.linkSync(src, dest());
      } catch {
        fs.copyFileSync(src, dest());
      }
    }
    linked.set(src, location);
    return location;
  };

  let inlineBytes = 0;
  for (const init of model.graph.initializers.values()) if (!isExternal(init.data)) inlineBytes += init.data.byteLength;
  const threshold = options.externalizeAbove ?? (inlineBytes > 1.5e9 ? 1024 : Infinity);
  const dataFile = `${path.basename(file)}.data`;
  let dataFd: number | undefined;
  let dataOffset = 0;

  const initProtos: TensorProto[] = [];
  try {
    for (const init of model.graph.initializers.values()) {
      const base: TensorProto = { name: init.name, dims: init.dims, data_type: init.dtype };
      if (isExternal(init.data)) {
        base.data_location = 1;
        base.external_data = [
          { key: 'location', value: linkLocation(init.data.path) },
          { key: 'offset', value: String(init.data.offset) },
          { key: 'length', value: String(init.data.length) },
        ];
      } else if (init.data.byteLength > threshold) {
        if (dataFd === undefined) dataFd = fs.openSync(path.join(outDir, dataFile), 'w');
        const pad = (4096 - (dataOffset % 4096)) % 4096; // page-aligned so onnxruntime can mmap
        if (pad) {
          fs.writeSync(dataFd, new Uint8Array(pad));
          dataOffset += pad;
        }
        fs.writeSync(dataFd, init.data);
        base.data_location = 1;
        base.external_data = [
          { key: 'location', value: dataFile },
          { key: 'offset', value: String(dataOffset) },
          { key: 'length', value: String(init.data.byteLength) },
        ];
        dataOffset += init.data.byteLength;
      } else {
        base.raw_data = init.data;
      }
      initProtos.push(base);
    }
  } finally {
    if (dataFd !== undefined) fs.closeSync(dataFd);
  }
  const bytes = serializeModel(model, initProtos);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = fs.statSync(a),
      y = fs.statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** Model bytes; initializers must be inline (or pre-built protos given). */
export function serializeModel(model: OnnxModel, initializerProtos?: TensorProto[]): Uint8Array {
  const g = model.graph;
  const inits =
    initializerProtos ??
    [...g.initializers.values()].map((init) => {
      if (isExternal(init.data)) throw new OrtTrainingError('BAD_STATE', `initializer ${init.name} is external; use saveModel`);
      return { name: init.name, dims: init.dims, data_type: init.dtype, raw_data: init.data } as TensorProto;
    });
  const graph: GraphProto = {
    ...g.extra,
    name: g.name,
    node: g.nodes.map((n) => ({
      ...(n.extra ?? {}),
      input: n.inputs,
      output: n.outputs,
      name: n.name,
      op_type: n.opType,
      ...(n.domain ? { domain: n.domain } : {}),
      attribute: n.attributes,
    })),
    initializer: inits,
    input: g.inputs.map(fromValueInfo),
    output: g.outputs.map(fromValueInfo),
    value_info: [...g.valueInfo.values()].map(fromValueInfo),
  };
  const proto: ModelProto = {
    ...model.extra,
    ir_version: model.irVersion,
    opset_import: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producer_name: model.producerName,
    producer_version: model.producerVersion,
    graph,
    metadata_props: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  };
  const err = ModelProtoType.verify(proto);
  if (err) throw new OrtTrainingError('BAD_STATE', `cannot serialize model: ${err}`);
  return ModelProtoType.encode(ModelProtoType.fromObject(proto)).finish();
}

/** Read the bytes of an external initializer (for small tensors such as start values of trainables). */
export function readExternal(ref: ExternalRef): Uint8Array {
  const fd = fs.openSync(ref.path, 'r');
  try {
    const buf = new Uint8Array(ref.length);
    let done = 0;
    while (done < ref.length) {
      const n = fs.readSync(fd, buf, done, ref.length - done, ref.offset + done);
      if (n === 0) throw new OrtTrainingError('MISSING_EXTERNAL_DATA', `external data file ${ref.path} ended early`);
      done += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

export { Long };
