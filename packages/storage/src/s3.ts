import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { contentTypeFor } from './content-type.js';
import { StorageError } from './errors.js';
import { normalizePrefix, validateKey } from './keys.js';
import { hashThrough, checkSha256, resolveUnder, sha256File, sha256Hex, walkFiles, writeFileAtomic } from './files.js';
import { fromS3Error } from './s3-errors.js';
import type { BlobBody, BlobInfo, BlobStore, PutOptions, S3Options } from './types.js';

const DEFAULT_TYPE = 'application/octet-stream';
/** Multipart part size: S3 needs >= 5 MiB; 8 MiB keeps memory at queueSize x 8 MiB per upload. */
export const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 4;
const META_SHA = 'sha256'; // travels as x-amz-meta-sha256

export function createS3Client(opts: S3Options = {}): S3Client {
  const credentials = opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined;
  return new S3Client({
    region: opts.region ?? 'us-east-1',
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
    ...(credentials ? { credentials } : {}),
    // We keep our own sha256; the SDK's default CRC trailers (aws-chunked bodies) break S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** An S3 bucket, under an optional key prefix, as a blob store. */
export class S3BlobStore implements BlobStore {
  readonly url: string;
  private readonly root: string; // '' or 'prefix/'

  constructor(
    /** The client; exposed so that callers (and tests) can add middleware or close it. */
    readonly client: S3Client,
    readonly bucket: string,
    prefix = '',
  ) {
    this.root = normalizePrefix(prefix);
    this.url = `s3://${bucket}${this.root === '' ? '' : `/${this.root.slice(0, -1)}`}`;
  }

  private full(key: string): string {
    return this.root + validateKey(key);
  }

  async put(key: string, body: BlobBody, opts: PutOptions = {}): Promise<BlobInfo> {
    const Key = this.full(key);
    const contentType = opts.contentType ?? DEFAULT_TYPE;
    if (body instanceof Uint8Array) {
      const sha256 = sha256Hex(body);
      checkSha256(opts.sha256, sha256, key); // refused before anything is sent
      await this.upload(Key, body, contentType, sha256);
      return { key, size: body.byteLength, sha256, contentType };
    }
    // A stream is hashed as it goes: the announced sha256 (if any) is stored up front and verified at the end;
    // otherwise the object gets its metadata by an in-place copy once the digest is known.
    const hashing = hashThrough(body);
    await this.upload(Key, hashing, contentType, opts.sha256?.toLowerCase());
    const sha256 = hashing.digest();
    try {
      checkSha256(opts.sha256, sha256, key);
    } catch (err) {
      await this.delete(key); // a mismatched object must not stay readable
      throw err;
    }
    if (opts.sha256 === undefined) {
      try {
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key,
            CopySource: `${this.bucket}/${encodeURIComponent(Key).replace(/%2F/g, '/')}`,
            MetadataDirective: 'REPLACE',
            ContentType: contentType,
            Metadata: { [META_SHA]: sha256 },
          }),
        );
      } catch (err) {
        throw fromS3Error(err, this.bucket, Key);
      }
    }
    return { key, size: hashing.size, sha256, contentType };
  }

  private async upload(Key: string, Body: Uint8Array | Readable, ContentType: string, sha256?: string): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body, ContentType, ...(sha256 ? { Metadata: { [META_SHA]: sha256 } } : {}) },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false, // abort the multipart upload so no orphan parts are billed
    });
    try {
      await upload.done();
    } catch (err) {
      throw fromS3Error(err, this.bucket, Key);
    }
  }

  async get(key: string): Promise<Buffer> {
    const stream = await this.getStream(key);
    const chunks: Buffer[] = [];
    for await (const c of stream as Readable) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async getStream(key: string): Promise<NodeJS.ReadableStream> {
    const Key = this.full(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!(res.Body instanceof Readable)) throw new StorageError('UNAVAILABLE', `S3 returned no body for ${Key}`);
      return res.Body;
    } catch (err) {
      throw fromS3Error(err, this.bucket, Key);
    }
  }

  async head(key: string): Promise<BlobInfo | null> {
    const Key = this.full(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return {
        key,
        size: res.ContentLength ?? 0,
        sha256: res.Metadata?.[META_SHA] ?? '',
        contentType: res.ContentType ?? DEFAULT_TYPE,
      };
    } catch (err) {
      const e = fromS3Error(err, this.bucket, Key);
      if (e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const Key = this.full(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      const e = fromS3Error(err, this.bucket, Key);
      if (e.code !== 'NOT_FOUND') throw e;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.listKeys(normalizePrefix(prefix));
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = res.Errors?.[0];
        if (failed) throw new StorageError('UNAVAILABLE', `could not delete s3://${this.bucket}/${failed.Key}: ${failed.Code} ${failed.Message}`);
      } catch (err) {
        throw fromS3Error(err, this.bucket, prefix);
      }
    }
    return keys.length;
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const keys = await this.listKeys(normalizePrefix(prefix));
    const out: BlobInfo[] = [];
    // ListObjectsV2 carries no user metadata, so sha256 and content type need a HEAD each.
    for (const full of keys) {
      const info = await this.head(full.slice(this.root.length));
      if (info) out.push(info);
    }
    return out;
  }

  /** Full keys (with the store's root) under a normalized folder, skipping keys we would refuse. */
  private async listKeys(folder: string): Promise<string[]> {
    const Prefix = this.root + folder;
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken }));
      } catch (err) {
        throw fromS3Error(err, this.bucket, Prefix);
      }
      for (const o of res.Contents ?? []) if (o.Key && isValidKey(o.Key.slice(this.root.length))) out.push(o.Key);
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort();
  }

  async presignGet(key: string, ttlSeconds: number): Promise<string | null> {
    const Key = this.full(key);
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key }), { expiresIn: ttlSeconds });
  }

  async presignPut(key: string, ttlSeconds: number): Promise<string | null> {
    const Key = this.full(key);
    // Only the host is signed: the client may send any Content-Type (the API sniffs the bytes anyway).
    return getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key }), { expiresIn: ttlSeconds });
  }

  async downloadPrefix(prefix: string, dir: string): Promise<void> {
    const folder = normalizePrefix(prefix);
    const root = path.resolve(dir);
    for (const full of await this.listKeys(folder)) {
      const key = full.slice(this.root.length);
      const target = resolveUnder(root, key.slice(folder.length));
      const info = await this.head(key);
      if (info?.sha256 && (await fileSha(target)) === info.sha256) continue; // warm cache
      const hashing = hashThrough(await this.getStream(key));
      await writeFileAtomic(target, hashing, () => {
        if (info?.sha256) checkSha256(info.sha256, hashing.digest(), key);
      });
    }
  }

  async uploadDir(dir: string, prefix: string): Promise<BlobInfo[]> {
    const folder = normalizePrefix(prefix);
    const out: BlobInfo[] = [];
    for (const rel of await walkFiles(dir)) {
      const file = path.join(dir, ...rel.split('/'));
      // Hash first so the object is written once, with its metadata, and verified on the way.
      const sha256 = await sha256File(file);
      out.push(await this.put(validateKey(folder + rel), createReadStream(file), { sha256, contentType: contentTypeFor(rel) }));
    }
    return out;
  }
}

function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

async function fileSha(file: string): Promise<string | null> {
  try {
    return await sha256File(file);
  } catch {
    return null;
  }
}
