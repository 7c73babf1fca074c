/**
 * On-disk cache of derived training graphs. Deriving the gradient graph of a large UNet takes seconds, and a
 * training job does it with the same model and options every time, so the result is stored once per key:
 *
 *   <cacheDir>/<key>/model.onnx           the training graph (external data hard-linked beside it, because
 *                                         onnxruntime refuses external data paths leaving the model dir)
 *   <cacheDir>/<key>/trainables.safetensors  start values of the trainable tensors
 *   <cacheDir>/<key>/meta.json            loss, gradient output names, graph inputs
 *
 * The key hashes the model bytes (not the external weights: their paths, sizes and mtimes instead), the
 * derive options, and this package's version and code. A key directory is built under a temporary name
 * and renamed into place, so concurrent processes never see a half-written entry.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isExternal, type Graph } from './graph.js';
import type { DeriveOptions } from './autodiff.js';
import { serializeModel, type OnnxModel } from './model.js';
import type { TensorProto } from './onnx/types.js';

/** `$XDG_CACHE_HOME/dynasyn/ort-training`, else `~/.cache/dynasyn/ort-training`. */
export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'dynasyn', 'ort-training');
}

const here = path.dirname(fileURLToPath(import.meta.url));

export const packageVersion: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(here, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

let codeHash: string | undefined;
/** Hash of this package's own code, so a changed gradient rule never serves a stale graph (dev builds keep the version). */
function codeFingerprint(): string {
  if (codeHash) return codeHash;
  const h = crypto.createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(js|ts)$/.test(e.name) && !/\.(test|d)\.ts$/.test(e.name)) h.update(e.name).update(fs.readFileSync(p));
    }
  };
  walk(here);
  return (codeHash = h.digest('hex'));
}

/** External data files a graph references, with what identifies their content cheaply. */
function externalFiles(g: Graph): { path: string; size: number; mtimeMs: number }[] {
  const files = new Set<string>();
  for (const init of g.initializers.values()) if (isExternal(init.data)) files.add(init.data.path);
  return [...files].sort().map((p) => {
    const s = fs.statSync(p);
    return { path: p, size: s.size, mtimeMs: s.mtimeMs };
  });
}

/** Model bytes with external initializers written as references (absolute paths), never read. */
function modelBytesForKey(model: OnnxModel): Uint8Array {
  const protos: TensorProto[] = [...model.graph.initializers.values()].map((init) =>
    isExternal(init.data)
      ? {
          name: init.name,
          dims: init.dims,
          data_type: init.dtype,
          data_location: 1,
          external_data: [
            { key: 'location', value: init.data.path },
            { key: 'offset', value: String(init.data.offset) },
            { key: 'length', value: String(init.data.length) },
          ],
        }
      : { name: init.name, dims: init.dims, data_type: init.dtype, raw_data: init.data },
  );
  return serializeModel(model, protos);
}

export interface CacheKeyInput {
  /** The .onnx file's bytes when the model came from a file; otherwise the model itself is serialized. */
  modelBytes?: Uint8Array;
  model: OnnxModel;
  options: DeriveOptions;
}

export function cacheKey({ modelBytes, model, options }: CacheKeyInput): string {
  const h = crypto.createHash('sha256');
  h.update(modelBytes ?? modelBytesForKey(model));
  h.update(
    JSON.stringify({
      external: externalFiles(model.graph),
      loss: options.loss,
      wrt: options.wrt,
      keepOutputs: options.keepOutputs ?? [],
      inputShapes: Object.entries(options.inputShapes ?? {}).sort(([a], [b]) => a.localeCompare(b)),
      allowUnused: !!options.allowUnused,
      gradSuffix: options.gradSuffix ?? '_grad',
      recomputeAbove: options.recomputeAbove ?? null,
      chunkAttentionAbove: options.chunkAttentionAbove ?? null,
      version: packageVersion,
      code: codeFingerprint(),
    }),
  );
  return h.digest('hex').slice(0, 32);
}

/**
 * The directory of `key`, building it with `build(tmpDir)` when absent. `build` writes the entry's files
 * into a fresh directory; the directory is then renamed into place. A process that loses the race keeps
 * the winner's entry (same key, same content) and removes its own.
 */
export async function cachedEntry(cacheDir: string, key: string, build: (dir: string) => Promise<void> | void): Promise<string> {
  const dir = path.join(cacheDir, key);
  if (fs.existsSync(path.join(dir, 'meta.json'))) return dir;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheDir, `.${key}.tmp-`));
  try {
    await build(tmp);
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
