import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, mkdir, rename, rm, writeFile, open } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError } from './errors.js';
import { validateKey } from './keys.js';

/** A pass-through that hashes and counts what flows through it, so bodies are read once. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  /** Hex digest; call once, after the stream ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Pipes `body` through a new HashingStream, carrying the source's errors along (plain pipe() drops them). */
export function hashThrough(body: NodeJS.ReadableStream): HashingStream {
  const source = toReadable(body);
  const hashing = new HashingStream();
  source.on('error', (err) => hashing.destroy(err));
  // The consumer (pipeline, Upload) sees the error through the stream's errored state; this listener only
  // keeps an error raised before the consumer attaches from becoming an uncaught 'error' event.
  hashing.on('error', () => {});
  return source.pipe(hashing);
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function toReadable(body: NodeJS.ReadableStream): Readable {
  return body instanceof Readable ? body : Readable.from(body as AsyncIterable<Buffer>);
}

export function checkSha256(expected: string | undefined, actual: string, key: string): void {
  if (expected !== undefined && expected.toLowerCase() !== actual) {
    throw new StorageError('CHECKSUM_MISMATCH', `checksum mismatch for ${key}: expected sha256 ${expected}, the bytes received hash to ${actual}`);
  }
}

/** Relative '/'-separated paths of every regular file under `dir`, sorted. */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(childRel);
      else if (e.isFile()) out.push(childRel);
    }
  }
  await walk('');
  return out.sort();
}

/** Resolves a validated relative key under `root`; the check is belt and braces after validateKey. */
export function resolveUnder(root: string, key: string): string {
  validateKey(key);
  const full = path.resolve(root, ...key.split('/'));
  if (!full.startsWith(root + path.sep)) throw new StorageError('BAD_KEY', `key ${key} escapes ${root}`);
  return full;
}

/** Writes a stream to `file` through a temp file in the same directory and a rename, so readers never see half a file. */
export async function writeFileAtomic(
  file: string,
  body: Readable | Uint8Array,
  /** Runs after the bytes are on disk and before they become visible; throwing discards them. */
  beforeRename?: () => void,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.tmp-${randomUUID()}`);
  try {
    if (body instanceof Uint8Array) await writeFile(tmp, body);
    else await pipeline(body, createWriteStream(tmp));
    const fh = await open(tmp, 'r');
    try {
      await fh.sync(); // the rename must not land before the bytes do
    } finally {
      await fh.close();
    }
    beforeRename?.();
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
