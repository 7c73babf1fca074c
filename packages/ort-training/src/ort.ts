/**
 * The boundary to onnxruntime-node: HostTensor <-> ort.Tensor conversion and session creation with a clear
 * error when an execution provider is not installed (onnxruntime-node bundles only the CPU provider; the
 * CUDA one is downloaded by its install script on machines with network access).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { OrtTrainingError } from './errors.js';
import { DataType, dataTypeName, type HostTensor, type TypedArray } from './tensor.js';

export type ExecutionProvider = 'cpu' | 'cuda';

const TO_ORT: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.FLOAT16]: 'float16',
  [DataType.INT64]: 'int64',
  [DataType.INT32]: 'int32',
  [DataType.INT16]: 'int16',
  [DataType.INT8]: 'int8',
  [DataType.UINT64]: 'uint64',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT16]: 'uint16',
  [DataType.UINT8]: 'uint8',
  [DataType.BOOL]: 'bool',
};
const FROM_ORT = Object.fromEntries(Object.entries(TO_ORT).map(([k, v]) => [v, Number(k)])) as Record<string, number>;

/** An ort.Tensor sharing the HostTensor's memory (onnxruntime copies inputs only where a device needs them). */
export function toOrtTensor(t: HostTensor): ort.Tensor {
  const type = TO_ORT[t.dtype];
  if (!type) throw new OrtTrainingError('UNSUPPORTED_DTYPE', `onnxruntime-node cannot take ${dataTypeName(t.dtype)} tensors`);
  return new ort.Tensor(type, t.data as never, t.dims);
}

/** A HostTensor copied out of an onnxruntime output (outputs are released with their session run). */
export function fromOrtTensor(t: ort.Tensor): HostTensor {
  const dtype = FROM_ORT[t.type];
  if (dtype === undefined) throw new OrtTrainingError('UNSUPPORTED_DTYPE', `onnxruntime returned a ${t.type} tensor, which ort-training does not handle`);
  const src = t.data as TypedArray;
  // float16 may arrive as a Float16Array on newer runtimes: keep the raw bits, as HostTensor documents
  const data = dtype === DataType.FLOAT16 ? new Uint16Array(src.buffer, src.byteOffset, src.length).slice() : src.slice();
  return { dtype, dims: [...t.dims], data };
}

/**
 * A HostTensor over an onnxruntime output's own memory, no copy: onnxruntime-node hands each output of a
 * run back in a fresh JavaScript buffer that no later run writes (ort.test.ts checks it), so the training
 * step's gradients (every weight's size in all-weights training) need not be copied again.
 */
export function viewOrtTensor(t: ort.Tensor): HostTensor {
  const dtype = FROM_ORT[t.type];
  if (dtype === undefined) throw new OrtTrainingError('UNSUPPORTED_DTYPE', `onnxruntime returned a ${t.type} tensor, which ort-training does not handle`);
  const src = t.data as TypedArray;
  const data = dtype === DataType.FLOAT16 ? new Uint16Array(src.buffer, src.byteOffset, src.length) : src;
  return { dtype, dims: [...t.dims], data };
}

const isOrtTensor = (t: HostTensor | ort.Tensor): t is ort.Tensor => t instanceof ort.Tensor;
export const asOrtTensor = (t: HostTensor | ort.Tensor): ort.Tensor => (isOrtTensor(t) ? t : toOrtTensor(t));

function providerLibraryDir(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** Refuse up front an execution provider whose shared library onnxruntime-node would fail to load. */
export function checkExecutionProviders(providers: readonly ExecutionProvider[]): void {
  for (const p of providers) {
    if (p !== 'cpu' && p !== 'cuda') throw new OrtTrainingError('BAD_ARGUMENT', `unknown execution provider ${String(p)} (use cpu or cuda)`);
  }
  if (providers.includes('cuda') && process.platform === 'linux') {
    const lib = path.join(providerLibraryDir(), 'libonnxruntime_providers_cuda.so');
    if (!fs.existsSync(lib)) throw cudaMissing(`${lib} does not exist`);
  }
}

const cudaMissing = (why: string, cause?: unknown): OrtTrainingError =>
  new OrtTrainingError(
    'BAD_ARGUMENT',
    `the CUDA execution provider is not available in this onnxruntime-node install (${why}); reinstall onnxruntime-node with network access and ONNXRUNTIME_NODE_INSTALL_CUDA=v12, or use executionProviders ['cpu']`,
    { cause },
  );

/** Create a session from a model file; external data resolves relative to the file. */
export async function createSession(
  modelFile: string,
  providers: readonly ExecutionProvider[],
  options: ort.InferenceSession.SessionOptions = {},
): Promise<ort.InferenceSession> {
  checkExecutionProviders(providers);
  try {
    return await ort.InferenceSession.create(modelFile, { ...options, executionProviders: [...providers] });
  } catch (e) {
    const msg = (e as Error).message;
    if (providers.includes('cuda') && /cuda|shared library/i.test(msg)) throw cudaMissing(msg, e);
    throw new OrtTrainingError('BAD_MODEL', `onnxruntime could not load ${modelFile}: ${msg}`, { cause: e });
  }
}

export { ort };
