import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createBlobStore, isStorageError, S3BlobStore } from './index.js';
import { describeBlobStore } from './testing/describe-blob-store.js';
import { startS3rver, type RunningS3rver } from './testing/s3rver.js';

// s3rver 3.7.1 runs in-process on a random port. It does not verify request signatures, so these tests
// cover request shapes, multipart, metadata and presigned URL form, not authentication.

describeBlobStore('S3 (s3rver)', async () => {
  const s3 = await startS3rver();
  const store = createBlobStore(`s3://${s3.bucket}/svc`, { s3: s3.s3 }) as S3BlobStore;
  let parts = 0;
  // Count UploadPart commands as the client sends them: proof that large bodies go multipart.
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') parts++;
      return next(args);
    },
    { step: 'initialize', name: 'countUploadParts' },
  );
  return {
    store,
    presigns: true,
    partsUploaded: () => parts,
    resetParts: () => {
      parts = 0;
    },
    teardown: async () => {
      store.client.destroy();
      await s3.stop();
    },
  };
});

describe('S3 backend specifics', () => {
  let s3: RunningS3rver;
  beforeAll(async () => {
    s3 = await startS3rver();
  });
  afterAll(() => s3.stop());

  test('the URL prefix is where objects live in the bucket, and the sha256 is stored as x-amz-meta-sha256', async () => {
    const store = createBlobStore(`s3://${s3.bucket}/deploy/blobs/`, { s3: s3.s3 }) as S3BlobStore;
    expect(store.url).toBe(`s3://${s3.bucket}/deploy/blobs`);
    const info = await store.put('tenants/t1/a.txt', Buffer.from('hello'));
    const raw = await store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    expect(raw.Contents?.map((o) => o.Key)).toEqual(['deploy/blobs/tenants/t1/a.txt']);
    const res = await fetch(`${s3.endpoint}/${s3.bucket}/deploy/blobs/tenants/t1/a.txt`, { method: 'HEAD' });
    expect(res.headers.get('x-amz-meta-sha256')).toBe(info.sha256);
    store.client.destroy();
  });

  test('a missing bucket is a clear UNAVAILABLE error naming it', async () => {
    const store = createBlobStore('s3://no-such-bucket-here', { s3: s3.s3 }) as S3BlobStore;
    const err = await store.put('a/b', Buffer.from('x')).catch((e: unknown) => e);
    expect(isStorageError(err, 'UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain('no-such-bucket-here');
    const err2 = await store.list('a').catch((e: unknown) => e);
    expect(isStorageError(err2, 'UNAVAILABLE')).toBe(true);
    store.client.destroy();
  });

  test('an unreachable endpoint fails with UNAVAILABLE', async () => {
    const store = createBlobStore('s3://some-bucket', {
      s3: { ...s3.s3, endpoint: 'http://127.0.0.1:1' },
    }) as S3BlobStore;
    const err = await store.head('a/b').catch((e: unknown) => e);
    expect(isStorageError(err, 'UNAVAILABLE')).toBe(true);
    store.client.destroy();
  });
});
