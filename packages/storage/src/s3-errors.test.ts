import { fromS3Error } from './s3-errors.js';

// s3rver does not check credentials, so the mapping of S3's own error shapes is checked directly.
describe('S3 error mapping', () => {
  const s3err = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  test.each([
    ['NoSuchKey', 404, 'NOT_FOUND'],
    ['NotFound', 404, 'NOT_FOUND'],
    ['NoSuchBucket', 404, 'UNAVAILABLE'],
    ['AccessDenied', 403, 'ACCESS_DENIED'],
    ['InvalidAccessKeyId', 403, 'ACCESS_DENIED'],
    ['SlowDown', 503, 'UNAVAILABLE'],
  ])('%s (%d) becomes %s and names the object', (name, status, code) => {
    const e = fromS3Error(s3err(name, status), 'bkt', 'k/1');
    expect(e.code).toBe(code);
    expect(e.message).toMatch(code === 'UNAVAILABLE' && name === 'NoSuchBucket' ? /bucket bkt does not exist/ : /s3:\/\/bkt\/k\/1/);
    expect(e.cause).toBeDefined();
  });
});
