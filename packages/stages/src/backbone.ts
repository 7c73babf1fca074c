/**
 * The model folders a worker is configured with, as local directories (onnxruntime reads files): BACKBONE and
 * CLIP_MODEL each name a directory, or a file:// or s3:// storage URL (an s3:// one is synced into the cache;
 * unchanged files are kept). BACKBONE defaults to the tiny random-weight bundle, created on first use. The same
 * rules for `dynasyn serve` (apps/cli serve.ts, which resolves BACKBONE once for its workers).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTinyBundle } from '@dynasyn/diffusion';
import type { StageBlobs } from './ports.js';

const isBundle = (dir: string) => existsSync(join(dir, 'model_index.json'));

/** Where a configured model comes from, and where an s3:// one is kept. */
export interface ModelStore {
  cacheDir: string;
  /** Opens the store of an s3:// URL (createBlobStore with the worker's S3 settings). */
  openStore: (url: string) => StageBlobs;
}

export interface BackboneSource extends ModelStore {
  backbone: string | undefined;
}

/**
 * The local directory of a model setting: a path or file:// URL as it is, an s3:// URL synced into
 * `<cacheDir>/<folder>/<hash of the URL>`. What the directory holds is the caller's to check.
 */
export async function localModelDir(location: string, { cacheDir, openStore }: ModelStore, folder: string): Promise<string> {
  if (location.startsWith('s3://')) {
    const dir = join(cacheDir, folder, createHash('sha256').update(location).digest('hex').slice(0, 16));
    await openStore(location).downloadPrefix('', dir);
    return dir;
  }
  return location.startsWith('file://') ? fileURLToPath(location) : resolve(location);
}

export async function resolveBackbone({ backbone, ...store }: BackboneSource): Promise<string> {
  let dir: string;
  if (backbone === undefined) {
    dir = join(store.cacheDir, 'tiny-bundle');
    if (!isBundle(dir)) {
      // written beside and renamed, so a crash never leaves a half bundle that looks complete
      const tmp = `${dir}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      await createTinyBundle(tmp, { seed: 0 });
      mkdirSync(dirname(dir), { recursive: true });
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    }
  } else {
    dir = await localModelDir(backbone, store, 'bundles');
  }
  if (!isBundle(dir)) throw new Error(`BACKBONE ${backbone}: no model_index.json in ${dir} (expected a Stable Diffusion ONNX bundle)`);
  return dir;
}
