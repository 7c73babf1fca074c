/**
 * Sampling-time adapters: each low-rank adapter is folded into its frozen weight, W' = W + scale * A B
 * (the adapter's y = x W + scale * x A B with the same x), so the pipeline runs the plain exported graph at
 * full speed. The merged models are saved into a cache directory and a copy of the bundle points at them,
 * which is all DiffusionPipeline needs (it takes a ModelBundle whose model paths it loads).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  DataType,
  fromNumbers,
  initializerToHost,
  loadModel,
  readExternal,
  saveModel,
  toNumbers,
  type HostTensor,
  type OnnxModel,
} from '@dynasyn/ort-training';
import type { ModelBundle } from '@dynasyn/diffusion';
import { InputError } from './input-error.js';
import type { AdapterSpec, LearnedConcepts } from './types.js';

/** Folds the adapters of `model` (`unet` or `text_encoder`) into `onnx`'s weights in place; returns how many. */
export function mergeAdapters(onnx: OnnxModel, which: AdapterSpec['model'], concepts: Pick<LearnedConcepts, 'adapters' | 'adapterSpec'>): number {
  let merged = 0;
  for (const spec of concepts.adapterSpec) {
    if (spec.model !== which) continue;
    const init = onnx.graph.initializers.get(spec.weight);
    if (!init) throw new InputError('BAD_OPTION', `adapter ${spec.a}: weight ${spec.weight} is not an initializer of the ${which} model`);
    if ((init.dtype !== DataType.FLOAT && init.dtype !== DataType.FLOAT16) || init.dims.length !== 2)
      throw new InputError(
        'BAD_OPTION',
        `adapter ${spec.a}: weight ${spec.weight} is ${init.dims.length}-D of type ${init.dtype}; only 2-D float32/float16 weights take adapters`,
      );
    const stored = initializerToHost(init, readExternal);
    // a float16 weight is merged in float32 and stored back as float16
    const w = stored.dtype === DataType.FLOAT ? stored : fromNumbers(DataType.FLOAT, stored.dims, toNumbers(stored));
    const a = tensor(concepts.adapters, spec.a);
    const b = tensor(concepts.adapters, spec.b);
    const [rows = 0, cols = 0] = spec.transposed ? [w.dims[1], w.dims[0]] : w.dims; // W as [in, out]
    const [aRows, rank = 0] = a.dims;
    const [bRank, bCols] = b.dims;
    if (aRows !== rows || bRank !== rank || bCols !== cols) {
      throw new InputError(
        'BAD_OPTION',
        `adapter ${spec.a}[${a.dims}] x ${spec.b}[${b.dims}] does not fit weight ${spec.weight}[${w.dims}]${spec.transposed ? ' (stored transposed)' : ''}`,
      );
    }
    const out = new Float32Array(w.data as Float32Array);
    const ad = a.data as Float32Array;
    const bd = b.data as Float32Array;
    // element (i, j) of the [in, out] update lies at i * cols + j, or at j * rows + i in a weight stored [out, in]
    const [si, sj] = spec.transposed ? [1, rows] : [cols, 1];
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < rank; k++) {
        const s = spec.scale * ad[i * rank + k]!;
        if (s === 0) continue;
        const brow = k * cols;
        for (let j = 0; j < cols; j++) out[i * si + j * sj]! += s * bd[brow + j]!;
      }
    }
    const bytes = init.dtype === DataType.FLOAT ? out : fromNumbers(init.dtype, w.dims, out).data;
    onnx.graph.initializers.set(spec.weight, { ...init, data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
    merged++;
  }
  return merged;
}

/**
 * The bundle with adapters merged into its UNet and text encoder, saved under `cacheDir` (the bundle itself
 * when there are no adapters). Re-merged on every call: the cache is the output directory of one run.
 */
export function bundleWithAdapters(bundle: ModelBundle, concepts: Pick<LearnedConcepts, 'adapters' | 'adapterSpec'>, cacheDir: string): ModelBundle {
  if (!concepts.adapterSpec.length) return bundle;
  const out: ModelBundle = { ...bundle };
  for (const [which, key] of [
    ['unet', 'unetPath'],
    ['text_encoder', 'textEncoderPath'],
  ] as const) {
    if (!concepts.adapterSpec.some((s) => s.model === which)) continue;
    const model = loadModel(bundle[key]);
    mergeAdapters(model, which, concepts);
    const file = path.join(cacheDir, which, 'model.onnx');
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    saveModel(model, file);
    out[key] = file;
  }
  return out;
}

function tensor(map: Map<string, HostTensor>, name: string): HostTensor {
  const t = map.get(name);
  if (!t) throw new InputError('BAD_OPTION', `adapter tensor ${name} is missing from the learned concepts`);
  if (t.dtype !== DataType.FLOAT || t.dims.length !== 2)
    throw new InputError('BAD_OPTION', `adapter tensor ${name} must be a 2-D float tensor, got [${t.dims}]`);
  return t;
}
