import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { isStorageError, type BlobStore, type StorageErrorCode } from '../index.js';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Whether presignGet must return a fetchable URL (S3) or null (local). */
  presigns: boolean;
  /** Multipart parts uploaded since the last reset, where the backend has multipart; null otherwise. */
  partsUploaded: (() => number) | null;
  resetParts?: () => void;
  teardown(): Promise<void>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const chunked = (b: Buffer, size: number): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
    })(),
  );

async function expectCode(p: Promise<unknown>, code: StorageErrorCode): Promise<Error> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isStorageError(err, code)) throw new Error(`expected StorageError ${code}, got ${String(err)}`);
  return err;
}

const TRAVERSALS = ['../escape', 'a/../../escape', '/etc/passwd', 'a//b', '.meta/x', 'a/./b', 'a\\..\\b', 'a/b/', ''];

/** The behaviour every BlobStore backend must show; run once per backend. */
export function describeBlobStore(name: string, setup: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fx: BlobStoreFixture;
    let store: BlobStore;
    beforeAll(async () => {
      fx = await setup();
      store = fx.store;
    });
    afterAll(async () => {
      await fx?.teardown();
    });

    test('put then get/head returns the same bytes, size, sha256 and content type', async () => {
      const body = randomBytes(1000);
      const info = await store.put('rt/image.png', body, { contentType: 'image/png' });
      expect(info).toEqual({ key: 'rt/image.png', size: 1000, sha256: sha(body), contentType: 'image/png' });
      expect((await store.get('rt/image.png')).equals(body)).toBe(true);
      expect(await store.head('rt/image.png')).toEqual(info);
    });

    test('a streamed put is hashed on the way and reads back through getStream', async () => {
      const body = randomBytes(300_000);
      const info = await store.put('stream/blob.bin', chunked(body, 65_536));
      expect(info).toMatchObject({ size: body.length, sha256: sha(body), contentType: 'application/octet-stream' });
      expect((await store.head('stream/blob.bin'))?.sha256).toBe(sha(body));
      const parts: Buffer[] = [];
      for await (const c of (await store.getStream('stream/blob.bin')) as Readable) parts.push(c as Buffer);
      expect(Buffer.concat(parts).equals(body)).toBe(true);
    });

    test('overwriting a key replaces bytes and metadata', async () => {
      await store.put('ow/x', Buffer.from('first'), { contentType: 'text/plain' });
      const second = await store.put('ow/x', chunked(Buffer.from('second!'), 3), { contentType: 'application/json' });
      expect((await store.get('ow/x')).toString()).toBe('second!');
      expect(await store.head('ow/x')).toEqual(second);
    });

    test('missing keys: get and getStream throw NOT_FOUND, head is null', async () => {
      await expectCode(store.get('missing/nothing'), 'NOT_FOUND');
      await expectCode(store.getStream('missing/nothing'), 'NOT_FOUND');
      expect(await store.head('missing/nothing')).toBeNull();
    });

    test('a body that does not match the announced sha256 is refused and leaves no object', async () => {
      const body = randomBytes(2048);
      const wrong = sha(Buffer.from('something else'));
      const e1 = await expectCode(store.put('sum/bytes', body, { sha256: wrong }), 'CHECKSUM_MISMATCH');
      expect(e1.message).toContain('sum/bytes');
      await expectCode(store.put('sum/stream', chunked(body, 500), { sha256: wrong }), 'CHECKSUM_MISMATCH');
      expect(await store.head('sum/bytes')).toBeNull();
      expect(await store.head('sum/stream')).toBeNull();
      expect(await store.list('sum')).toEqual([]);
      // the right checksum passes for both body kinds
      await store.put('sum/bytes', body, { sha256: sha(body) });
      expect((await store.put('sum/stream', chunked(body, 500), { sha256: sha(body) })).sha256).toBe(sha(body));
      expect((await store.head('sum/stream'))?.sha256).toBe(sha(body));
    });

    test('a body stream that fails midway rejects the put and leaves the previous object intact', async () => {
      await store.put('broken/x.bin', Buffer.from('previous'));
      const failing = Readable.from(
        (async function* () {
          yield randomBytes(100_000);
          throw new Error('disk went away');
        })(),
      );
      await expect(store.put('broken/x.bin', failing)).rejects.toThrow(/disk went away/);
      expect((await store.get('broken/x.bin')).toString()).toBe('previous');
      await expect(
        store.put(
          'broken/y.bin',
          Readable.from(
            (async function* () {
              yield randomBytes(10);
              throw new Error('disk went away');
            })(),
          ),
        ),
      ).rejects.toThrow(/disk went away/);
      expect(await store.head('broken/y.bin')).toBeNull();
    });

    test('keys that could escape the root or alias another key are refused with BAD_KEY', async () => {
      for (const key of TRAVERSALS) {
        await expectCode(store.put(key, Buffer.from('x')), 'BAD_KEY');
        await expectCode(store.get(key), 'BAD_KEY');
        await expectCode(store.head(key), 'BAD_KEY');
        await expectCode(store.delete(key), 'BAD_KEY');
      }
      await expectCode(store.list('../'), 'BAD_KEY');
      await expectCode(store.deletePrefix('a/../..'), 'BAD_KEY');
      await expectCode(store.downloadPrefix('..', os.tmpdir()), 'BAD_KEY');
    });

    test('list is folder-scoped and sorted; delete is idempotent; deletePrefix counts and spares siblings', async () => {
      await store.put('ls/run1/b.txt', Buffer.from('bb'));
      await store.put('ls/run1/a.txt', Buffer.from('a'));
      await store.put('ls/run1/deep/c.txt', Buffer.from('ccc'));
      await store.put('ls/run10/d.txt', Buffer.from('d'));
      const listed = await store.list('ls/run1');
      expect(listed.map((i) => i.key)).toEqual(['ls/run1/a.txt', 'ls/run1/b.txt', 'ls/run1/deep/c.txt']);
      expect(listed[2]).toEqual({ key: 'ls/run1/deep/c.txt', size: 3, sha256: sha(Buffer.from('ccc')), contentType: 'application/octet-stream' });
      expect(await store.list('ls/run1/')).toEqual(listed);
      expect(await store.list('ls/nothing-here')).toEqual([]);

      await store.delete('ls/run1/a.txt');
      await store.delete('ls/run1/a.txt');
      expect(await store.head('ls/run1/a.txt')).toBeNull();

      expect(await store.deletePrefix('ls/run1')).toBe(2);
      expect(await store.list('ls/run1')).toEqual([]);
      expect((await store.list('ls')).map((i) => i.key)).toEqual(['ls/run10/d.txt']);
      expect(await store.deletePrefix('ls/run1')).toBe(0);
    });

    test('presignGet gives a URL that fetch can read (S3) or null (local)', async () => {
      const body = randomBytes(4096);
      await store.put('pre/sample.png', body, { contentType: 'image/png' });
      const url = await store.presignGet('pre/sample.png', 60);
      if (!fx.presigns) {
        expect(url).toBeNull();
        return;
      }
      expect(url).toMatch(/^http/);
      const res = await fetch(url!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    });

    test('presignPut gives a URL a plain HTTP PUT stores the object through (S3) or null (local)', async () => {
      const body = randomBytes(3000);
      const url = await store.presignPut('up/photo', 60);
      if (!fx.presigns) {
        expect(url).toBeNull();
        return;
      }
      const res = await fetch(url!, { method: 'PUT', body, headers: { 'content-type': 'image/png' } });
      expect(res.status).toBe(200);
      expect((await store.get('up/photo')).equals(body)).toBe(true);
      expect((await store.head('up/photo'))?.size).toBe(body.length);
    });

    test('a 20 MiB body round-trips, in several multipart parts where the backend has multipart', async () => {
      const body = randomBytes(20 * 1024 * 1024);
      fx.resetParts?.();
      const info = await store.put('big/checkpoint.bin', body);
      expect(info.size).toBe(body.length);
      if (fx.partsUploaded) expect(fx.partsUploaded()).toBeGreaterThan(1);
      const back = await store.get('big/checkpoint.bin');
      expect(sha(back)).toBe(sha(body));
      expect((await store.head('big/checkpoint.bin'))?.sha256).toBe(sha(body));
    });

    test('uploadDir then downloadPrefix reproduces a directory tree; a warm cache is kept, a corrupt file replaced', async () => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'blobstore-tree-'));
      try {
        const src = path.join(tmp, 'src');
        const files: Record<string, Buffer> = {
          'model_index.json': Buffer.from('{"tiny":true}'),
          'unet/model.onnx': randomBytes(70_000),
          'text_encoder/weights/part-1.bin': randomBytes(10),
        };
        for (const [rel, bytes] of Object.entries(files)) {
          await mkdir(path.dirname(path.join(src, rel)), { recursive: true });
          await writeFile(path.join(src, rel), bytes);
        }
        const uploaded = await store.uploadDir(src, 'bundles/tiny');
        expect(uploaded.map((i) => [i.key, i.sha256])).toEqual(
          Object.keys(files)
            .sort()
            .map((rel) => [`bundles/tiny/${rel}`, sha(files[rel]!)]),
        );
        // content types from the extension, so links to uploaded artifacts serve them as what they are
        expect(Object.fromEntries(uploaded.map((i) => [i.key, i.contentType]))).toEqual({
          'bundles/tiny/model_index.json': 'application/json',
          'bundles/tiny/text_encoder/weights/part-1.bin': 'application/octet-stream',
          'bundles/tiny/unet/model.onnx': 'application/octet-stream',
        });
        expect((await store.head('bundles/tiny/model_index.json'))?.contentType).toBe('application/json');

        const dst = path.join(tmp, 'cache');
        await store.downloadPrefix('bundles/tiny', dst);
        for (const [rel, bytes] of Object.entries(files)) expect((await readFile(path.join(dst, rel))).equals(bytes)).toBe(true);

        const kept = path.join(dst, 'unet/model.onnx');
        // an mtime long past: a rewrite by the second download would show however quickly it ran
        const past = new Date('2020-01-01T00:00:00Z');
        await utimes(kept, past, past);
        const before = (await stat(kept)).mtimeMs;
        await writeFile(path.join(dst, 'model_index.json'), 'corrupt');
        await store.downloadPrefix('bundles/tiny/', dst);
        expect((await stat(kept)).mtimeMs).toBe(before);
        expect((await readFile(path.join(dst, 'model_index.json'))).equals(files['model_index.json']!)).toBe(true);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
  });
}
