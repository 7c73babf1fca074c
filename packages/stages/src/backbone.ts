/**
 * BACKBONE as a local bundle directory (onnxruntime reads files): a directory, a file:// or s3:// storage URL
 * (synced into the cache; unchanged files are kept), or by default the tiny random-weight bundle, created on
 * first use. The same rules as `dynasyn serve` (apps/cli backbone.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTinyBundle } from '@dynasyn/diffusion';
import type { StageBlobs } from './ports.js';

const isBundle = (dir: string) => existsSync(join(dir, 'model_index.json'));

export interface BackboneSource {
  backbone: string | undefined;
  cacheDir: string;
  /** Opens the store of an s3:// BACKBONE (createBlobStore with the worker's S3 settings). */
  openStore: (url: string) => StageBlobs;
}

export async function resolveBackbone({ backbone, cacheDir, openStore }: BackboneSource): Promise<string> {
  let dir: string;
  if (backbone === undefined) {
    dir = join(cacheDir, 'tiny-bundle');
    if (!isBundle(dir)) {
      // written beside and renamed, so a crash never leaves a half bundle that looks complete
      const tmp = `${dir}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      await createTinyBundle(tmp, { seed: 0 });
      mkdirSync(dirname(dir), { recursive: true });
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    }
  } else if (backbone.startsWith('s3://')) {
    dir = join(cacheDir, 'bundles', createHash('sha256').update(backbone).digest('hex').slice(0, 16));
    await openStore(backbone).downloadPrefix('', dir);
  } else {
    dir = backbone.startsWith('file://') ? fileURLToPath(backbone) : resolve(backbone);
  }
  if (!isBundle(dir)) throw new Error(`BACKBONE ${backbone}: no model_index.json in ${dir} (expected a Stable Diffusion ONNX bundle)`);
  return dir;
}
