import type { StorageEnv } from './pieces.js';

/** The S3 options of packages/storage's createBlobStore(url, { s3 }), from the storage piece: the one place they are assembled. */
export function s3OptionsFrom(env: Omit<StorageEnv, 'STORAGE_URL'>): { endpoint?: string; region?: string; accessKeyId?: string; secretAccessKey?: string } {
  return {
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    // one without the other would sign with half a credential: both or the SDK's provider chain
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : {}),
  };
}
