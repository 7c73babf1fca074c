import { createBlobStore, isStorageError, parseStorageUrl } from './index.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return isStorageError(e) ? e.code : 'not a StorageError';
  }
};

describe('storage URLs', () => {
  test('s3://bucket/prefix and file:///dir parse to their parts', () => {
    expect(parseStorageUrl('s3://my-bucket/a/b/')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseStorageUrl('s3://my-bucket')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(parseStorageUrl('file:///var/lib/dynasyn')).toEqual({ kind: 'file', dir: '/var/lib/dynasyn' });
  });

  test('the store reports a normalized url', () => {
    expect(createBlobStore('s3://my-bucket/a/b/', { s3: { endpoint: 'http://127.0.0.1:9' } }).url).toBe('s3://my-bucket/a/b');
    expect(createBlobStore('file:///tmp/x/').url).toBe('file:///tmp/x');
  });

  test.each(['not a url', 'http://host/x', 's3://UPPER/x', 's3://b', 'file://host/dir', 's3://bucket:9000/x', 's3://bucket/../x', 's3://bucket/a//b'])(
    '%j is refused with BAD_URL',
    (url) => {
      expect(code(() => createBlobStore(url))).toBe('BAD_URL');
    },
  );
});
