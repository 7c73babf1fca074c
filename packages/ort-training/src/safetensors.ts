/**
 * The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data), used for
 * trainable tensors, optimizer state and test fixtures. Reading maps names to views of one buffer.
 */
import fs from 'node:fs';
import { OrtTrainingError } from './errors.js';
import { DataType, dataTypeName, elementSize, numel, tensorBytes, viewBytes, type HostTensor } from './tensor.js';

const TO_ST: Record<number, string> = {
  [DataType.FLOAT]: 'F32',
  [DataType.DOUBLE]: 'F64',
  [DataType.FLOAT16]: 'F16',
  [DataType.BFLOAT16]: 'BF16',
  [DataType.INT64]: 'I64',
  [DataType.INT32]: 'I32',
  [DataType.INT16]: 'I16',
  [DataType.INT8]: 'I8',
  [DataType.UINT8]: 'U8',
  [DataType.BOOL]: 'BOOL',
  [DataType.UINT64]: 'U64',
  [DataType.UINT32]: 'U32',
  [DataType.UINT16]: 'U16',
};
const FROM_ST = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, Number(k)]));

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export function encodeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata: Record<string, string> = {}): Buffer {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const st = TO_ST[t.dtype];
    if (!st) throw new OrtTrainingError('UNSUPPORTED_DTYPE', `safetensors cannot store ${dataTypeName(t.dtype)} (tensor ${name})`);
    const len = numel(t.dims) * elementSize(t.dtype);
    header[name] = { dtype: st, shape: t.dims, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps data 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const [, t] of entries) {
    out.set(tensorBytes(t), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(buf: Uint8Array, label = 'safetensors data'): SafetensorsFile {
  const bad = (why: string): never => {
    throw new OrtTrainingError('BAD_TENSOR', `${label} is not a valid safetensors file: ${why}`);
  };
  if (buf.byteLength < 8) bad('shorter than its 8-byte header length');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (8 + n > buf.byteLength) bad(`header of ${n} bytes runs past the end (truncated?)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString('utf8'));
  } catch {
    return bad('header is not JSON');
  }
  const base = 8 + n;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = e as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = e as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dt = FROM_ST[dtype];
    if (dt === undefined) bad(`tensor ${name} has unsupported dtype ${dtype}`);
    const [s, t] = data_offsets;
    if (t - s !== numel(shape) * elementSize(dt!) || base + t > buf.byteLength) bad(`tensor ${name} has inconsistent offsets`);
    tensors.set(name, { dtype: dt!, dims: [...shape], data: viewBytes(dt!, buf.subarray(base + s, base + t)) });
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new OrtTrainingError('BAD_ARGUMENT', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  return decodeSafetensors(buf, file);
}

/** Write atomically (temp file + rename), so a crash never leaves a half-written checkpoint. */
export function writeSafetensors(file: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, encodeSafetensors(tensors, metadata));
  fs.renameSync(tmp, file);
}
