/**
 * Node environment sharing the host realm's typed-array and buffer constructors with the test realm:
 * onnxruntime-node's native addon creates outputs in the host realm, and onnxruntime-common checks them with
 * `instanceof`, which fails across jest's vm contexts.
 */
import { TestEnvironment } from 'jest-environment-node';

const SHARED = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Uint8Array',
  'Int8Array',
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Uint8ClampedArray',
  'DataView',
  'Buffer',
];

export default class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const k of SHARED) if (globalThis[k]) this.global[k] = globalThis[k];
  }
}
