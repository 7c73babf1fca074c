import { mkdtemp, readFile, rm, readdir, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createBlobStore, LocalBlobStore } from './index.js';
import { describeBlobStore } from './testing/describe-blob-store.js';

describeBlobStore('local directory', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'blobstore-local-'));
  return {
    store: createBlobStore(pathToFileURL(dir).href),
    presigns: false,
    partsUploaded: null,
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('local backend specifics', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'blobstore-local-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  // local only: on S3 a delete and concurrent puts are independent per object (s3rver, the test double, crashes
  // on this race itself)
  test('deletePrefix succeeds while objects are being written under the prefix', async () => {
    const store = new LocalBlobStore(dir);
    let stop = false;
    const writers = [0, 1, 2].map(async (w) => {
      for (let i = 0; !stop; i++) await store.put(`race/run/w${w}/d${i % 3}/f${i}.bin`, randomBytes(2048)).catch(() => undefined);
    });
    try {
      await store.put('race/run/seed.bin', randomBytes(16));
      for (let round = 0; round < 20; round++) {
        await store.deletePrefix('race/run'); // must not reject however the writers interleave
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    await store.deletePrefix('race/run');
    expect(await store.list('race/run')).toEqual([]);
    expect(await store.list('')).toEqual([]); // the trash is not in the key space
  });

  test('objects are plain files at <root>/<key> and nothing else is left beside them', async () => {
    const store = new LocalBlobStore(dir);
    await store.put('tenants/t1/img.png', Buffer.from('png'));
    expect(await readFile(path.join(dir, 'tenants/t1/img.png'), 'utf8')).toBe('png');
    expect(await readdir(path.join(dir, 'tenants/t1'))).toEqual(['img.png']); // no temp files left
  });

  test('a file copied in by hand (no sidecar) gets its sha256 computed on demand', async () => {
    const store = new LocalBlobStore(dir);
    await store.put('a/b.bin', Buffer.from('old'));
    await writeFile(path.join(dir, 'a/b.bin'), 'changed behind our back');
    const want = createHash('sha256').update('changed behind our back').digest('hex');
    expect((await store.head('a/b.bin'))?.sha256).toBe(want);
    await writeFile(path.join(dir, 'a/c.bin'), 'hand-made');
    expect(await store.list('a')).toHaveLength(2);
  });

  test('the url is the file: URL of the root', () => {
    expect(createBlobStore(pathToFileURL(dir).href).url).toBe(pathToFileURL(dir).href);
  });
});
