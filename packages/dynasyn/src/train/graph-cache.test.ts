import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultCacheDir } from '@dynasyn/ort-training';
import { graphCacheDir } from './graph-cache.js';

/**
 * Only one filesystem is mounted under /tmp and $HOME here, so the "other filesystem" branch is checked
 * through XDG_CACHE_HOME on /dev/shm (tmpfs) when it exists.
 */
test("the shared cache when it is on the backbone's filesystem, else beside the backbone", () => {
  const backbone = fs.mkdtempSync(path.join(os.tmpdir(), 'graph-cache-'));
  const saved = process.env.XDG_CACHE_HOME;
  try {
    process.env.XDG_CACHE_HOME = path.join(os.tmpdir(), 'graph-cache-xdg');
    expect(graphCacheDir(backbone)).toBe(defaultCacheDir());
    if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(os.tmpdir()).dev) {
      process.env.XDG_CACHE_HOME = '/dev/shm/graph-cache-xdg';
      expect(graphCacheDir(backbone)).toBe(path.join(backbone, '.dynasyn-cache'));
    }
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    fs.rmSync(backbone, { recursive: true, force: true });
  }
});
