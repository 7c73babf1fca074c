/**
 * Where a run's derived training graphs are cached. Deriving the training graph of SD 2.1 takes minutes and
 * gives the same graph for every run on the same backbone with the same options, so the cache is shared by
 * runs (its keys cover the model, the options and the weights' files: ort-training cache.ts). A derived
 * graph hard-links the backbone's weight files beside it; across filesystems they would be copied (GBs per
 * entry), so the cache must live on the backbone's filesystem: ort-training's default cache when it does,
 * else `<backbone>/.dynasyn-cache` when that is writable, else the default (and copies).
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultCacheDir } from '@dynasyn/ort-training';

/** The device of `p`, or of its nearest existing parent. */
function deviceOf(p: string): number | undefined {
  for (let dir = path.resolve(p); ; dir = path.dirname(dir)) {
    try {
      return fs.statSync(dir).dev;
    } catch {
      /* not there yet */
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The derived-graph cache for runs on the bundle in `backboneDir` (see the file header). */
export function graphCacheDir(backboneDir: string): string {
  const shared = defaultCacheDir();
  if (deviceOf(shared) === deviceOf(backboneDir)) return shared;
  return writable(backboneDir) ? path.join(backboneDir, '.dynasyn-cache') : shared;
}
