/**
 * Element types and small host-side tensors: constants, folded shape arithmetic and start values of
 * trainable tensors. Large weights never become HostTensors (they stay in their external data files).
 */
import { OrtTrainingError } from './errors.js';

export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k.toLowerCase()]));
export const dataTypeName = (t: number): string => NAMES[t] ?? `type#${t}`;

/** Bytes per element; undefined for strings and sub-byte types. */
export function elementSize(t: number): number {
  switch (t) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return 2;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    case DataType.COMPLEX128:
      return 16;
    default:
      throw new OrtTrainingError('UNSUPPORTED_DTYPE', `element type ${dataTypeName(t)} is not supported`);
  }
}

export const isFloat = (t: number): boolean => t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16 || t === DataType.BFLOAT16;

export type TypedArray =
  Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array;

export interface HostTensor {
  dtype: number;
  dims: number[];
  /** FLOAT16/BFLOAT16 hold raw bits in a Uint16Array; BOOL holds 0/1 in a Uint8Array. */
  data: TypedArray;
}

export const numel = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function allocate(dtype: number, n: number): TypedArray {
  switch (dtype) {
    case DataType.FLOAT:
      return new Float32Array(n);
    case DataType.DOUBLE:
      return new Float64Array(n);
    case DataType.INT32:
      return new Int32Array(n);
    case DataType.INT64:
      return new BigInt64Array(n);
    case DataType.UINT64:
      return new BigUint64Array(n);
    case DataType.UINT32:
      return new Uint32Array(n);
    case DataType.INT16:
      return new Int16Array(n);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return new Uint16Array(n);
    case DataType.INT8:
      return new Int8Array(n);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(n);
    default:
      throw new OrtTrainingError('UNSUPPORTED_DTYPE', `element type ${dataTypeName(dtype)} is not supported`);
  }
}

/** Typed view over little-endian bytes (copies when the bytes are not aligned for the element type). */
export function viewBytes(dtype: number, bytes: Uint8Array): TypedArray {
  const size = elementSize(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new OrtTrainingError('BAD_TENSOR', `${bytes.byteLength} bytes is not a whole number of ${dataTypeName(dtype)} elements`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : Uint8Array.prototype.slice.call(bytes); // Buffer#slice would not copy
  const n = bytes.byteLength / size;
  const out = allocate(dtype, 0).constructor as unknown as new (b: ArrayBufferLike, o: number, n: number) => TypedArray;
  return new out(aligned.buffer, aligned.byteOffset, n);
}

export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

// IEEE half precision <-> single precision.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let exp = e - 127 + 15;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    m |= 0x800000;
    const shift = 14 - exp;
    let half = m >> shift;
    const rem = m & ((1 << shift) - 1),
      mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (m >> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
const bfloatToFloat = (b: number): number => {
  u32[0] = b << 16;
  return f32[0]!;
};

/** Element values as JS numbers (int64 beyond 2^53 loses precision, which shape arithmetic never needs). */
export function toNumbers(t: HostTensor): number[] {
  const out = new Array<number>(t.data.length);
  if (t.dtype === DataType.FLOAT16) for (let i = 0; i < out.length; i++) out[i] = halfToFloat(t.data[i] as number);
  else if (t.dtype === DataType.BFLOAT16) for (let i = 0; i < out.length; i++) out[i] = bfloatToFloat(t.data[i] as number);
  else for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** A tensor of `dtype` from JS numbers (rounded/truncated the way a Cast would). */
export function fromNumbers(dtype: number, dims: number[], values: ArrayLike<number>): HostTensor {
  const data = allocate(dtype, values.length);
  if (dtype === DataType.INT64) {
    const d = data as BigInt64Array;
    for (let i = 0; i < values.length; i++) d[i] = clampBigInt(values[i]!);
  } else if (dtype === DataType.UINT64) {
    const d = data as BigUint64Array;
    for (let i = 0; i < values.length; i++) d[i] = BigInt(Math.max(0, Math.trunc(values[i]!)));
  } else if (dtype === DataType.FLOAT16) {
    for (let i = 0; i < values.length; i++) data[i] = floatToHalf(values[i]!);
  } else if (dtype === DataType.BFLOAT16) {
    for (let i = 0; i < values.length; i++) {
      f32[0] = values[i]!;
      data[i] = u32[0]! >>> 16;
    }
  } else if (dtype === DataType.BOOL) {
    for (let i = 0; i < values.length; i++) data[i] = values[i] ? 1 : 0;
  } else {
    (data as Float32Array).set(Array.from(values, (v) => (isFloat(dtype) ? v : Math.trunc(v))));
  }
  return { dtype, dims: [...dims], data };
}

function clampBigInt(v: number): bigint {
  if (Number.isNaN(v)) return 0n;
  if (v >= 9.223372036854776e18) return 9223372036854775807n;
  if (v <= -9.223372036854776e18) return -9223372036854775808n;
  return BigInt(Math.trunc(v));
}

export const scalar = (dtype: number, v: number): HostTensor => fromNumbers(dtype, [], [v]);
export const int64s = (values: number[]): HostTensor => fromNumbers(DataType.INT64, [values.length], values);

/** max|a - b| / max|b|: scale-free and not blown up by elements near zero (the metric of the parity tests against PyTorch). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return Number.isNaN(diff) ? Infinity : diff / Math.max(scale, 1e-30);
}
