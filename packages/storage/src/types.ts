/** What a store knows about one object. */
export interface BlobInfo {
  /** The key relative to the store's root (no bucket, no URL prefix). */
  key: string;
  /** Bytes. */
  size: number;
  /** Lower-case hex sha256 of the bytes; '' only for S3 objects written by another tool without our metadata. */
  sha256: string;
  /** MIME type given at put, 'application/octet-stream' otherwise. */
  contentType: string;
}

export interface PutOptions {
  /** MIME type recorded with the object. */
  contentType?: string;
  /** Expected lower-case hex sha256 of the body; a mismatch fails the put with CHECKSUM_MISMATCH. */
  sha256?: string;
}

export type BlobBody = Uint8Array | NodeJS.ReadableStream;

/**
 * Keys are relative, '/'-separated, safe-alphabet paths (see keys.ts); prefixes are folders:
 * `list('a/b')` covers `a/b/...` and never `a/bc`.
 */
export interface BlobStore {
  /** 's3://bucket/prefix' or 'file:///abs/dir'. */
  readonly url: string;
  put(key: string, body: BlobBody, opts?: PutOptions): Promise<BlobInfo>;
  /** The whole object; StorageError NOT_FOUND if absent. */
  get(key: string): Promise<Buffer>;
  /** The object as a stream; NOT_FOUND is thrown here, before any byte is read. */
  getStream(key: string): Promise<NodeJS.ReadableStream>;
  head(key: string): Promise<BlobInfo | null>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Deletes every object under the folder `prefix`; returns how many there were. */
  deletePrefix(prefix: string): Promise<number>;
  /** Every object under the folder `prefix`, sorted by key. */
  list(prefix: string): Promise<BlobInfo[]>;
  /** A URL anyone can GET for `ttlSeconds`; null for the local backend (the API serves those bytes itself). */
  presignGet(key: string, ttlSeconds: number): Promise<string | null>;
  /**
   * A URL anyone can PUT the object's bytes to for `ttlSeconds` (any Content-Type; the object then has no
   * sha256 metadata, so `head` reports '' for it); null for the local backend.
   */
  presignPut(key: string, ttlSeconds: number): Promise<string | null>;
  /** Copies every object under `prefix` to `dir/<key minus prefix>`; files already there with the same sha256 are kept. */
  downloadPrefix(prefix: string, dir: string): Promise<void>;
  /** Uploads every file under `dir` to `prefix/<relative path>`; returns what was written, sorted by key. */
  uploadDir(dir: string, prefix: string): Promise<BlobInfo[]>;
}

/** Connection settings for S3 and S3-compatible servers; the apps map environment variables onto these. */
export interface S3Options {
  /** Custom endpoint (MinIO, s3rver...); switches to path-style addressing unless forcePathStyle says otherwise. */
  endpoint?: string;
  /** Region; default 'us-east-1'. */
  region?: string;
  /** Static credentials; without them the AWS SDK's default provider chain is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (http://host/bucket/key); default true when an endpoint is set. */
  forcePathStyle?: boolean;
}

export interface BlobStoreOptions {
  s3?: S3Options;
}
