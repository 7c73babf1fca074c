import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { contentTypeFor } from './content-type.js';
import { StorageError } from './errors.js';
import { normalizePrefix, validateKey } from './keys.js';
import { hashThrough, checkSha256, resolveUnder, sha256File, sha256Hex, walkFiles, writeFileAtomic } from './files.js';
import type { BlobBody, BlobInfo, BlobStore, PutOptions } from './types.js';

const DEFAULT_TYPE = 'application/octet-stream';
const META_DIR = '.meta';
/** Folders being removed by deletePrefix: out of the key space (dot entries are never keys). */
const TRASH_DIR = '.trash';

/** What the sidecar `<root>/.meta/<key>.json` records; size and mtime tell whether it still describes the file. */
interface Sidecar {
  sha256: string;
  size: number;
  mtimeMs: number;
  contentType: string;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/**
 * A directory as a blob store. Objects are plain files at `<root>/<key>` (so the tree can be inspected or
 * served as is); sha256 and content type live in a sidecar under `<root>/.meta/`, written after the data
 * file. A missing or stale sidecar (size or mtime differ, e.g. a file copied in by hand or a crash between
 * the two writes) makes `head` compute the sha256 on demand. Keys can never start a segment with '.', so
 * neither `.meta` nor the `.tmp-*` files of atomic writes are reachable or listed.
 */
export class LocalBlobStore implements BlobStore {
  readonly url: string;

  constructor(readonly root: string) {
    if (!path.isAbsolute(root)) throw new StorageError('BAD_URL', `local storage root must be absolute: ${root}`);
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  private file(key: string): string {
    return resolveUnder(this.root, key);
  }

  private sidecar(key: string): string {
    return `${resolveUnder(path.join(this.root, META_DIR), key)}.json`;
  }

  async put(key: string, body: BlobBody, opts: PutOptions = {}): Promise<BlobInfo> {
    const file = this.file(key);
    const contentType = opts.contentType ?? DEFAULT_TYPE;
    let sha256: string;
    if (body instanceof Uint8Array) {
      sha256 = sha256Hex(body);
      checkSha256(opts.sha256, sha256, key); // refused before anything is written
      await rm(this.sidecar(key), { force: true });
      await writeFileAtomic(file, body);
    } else {
      const hashing = hashThrough(body);
      sha256 = '';
      await rm(this.sidecar(key), { force: true });
      await writeFileAtomic(file, hashing, () => {
        sha256 = hashing.digest();
        checkSha256(opts.sha256, sha256, key); // the temp file is dropped, the old object stays
      });
    }
    const st = await stat(file);
    const meta: Sidecar = { sha256, size: st.size, mtimeMs: st.mtimeMs, contentType };
    await writeFileAtomic(this.sidecar(key), Buffer.from(JSON.stringify(meta)));
    return { key, size: st.size, sha256, contentType };
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.file(key));
    } catch (err) {
      throw this.wrap(err, key);
    }
  }

  async getStream(key: string): Promise<NodeJS.ReadableStream> {
    const file = this.file(key);
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new StorageError('NOT_FOUND', `no object ${key} in ${this.url}`);
    } catch (err) {
      throw this.wrap(err, key);
    }
    return createReadStream(file);
  }

  async head(key: string): Promise<BlobInfo | null> {
    const file = this.file(key);
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      if (isMissing(err)) return null;
      throw this.wrap(err, key);
    }
    if (!st.isFile()) return null;
    let meta: Sidecar | undefined;
    try {
      meta = JSON.parse(await readFile(this.sidecar(key), 'utf8')) as Sidecar;
    } catch {
      meta = undefined; // absent or unreadable: computed below
    }
    if (meta && meta.size === st.size && meta.mtimeMs === st.mtimeMs) {
      return { key, size: st.size, sha256: meta.sha256, contentType: meta.contentType };
    }
    return { key, size: st.size, sha256: await sha256File(file), contentType: meta?.contentType ?? DEFAULT_TYPE };
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
    await rm(this.sidecar(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const folder = normalizePrefix(prefix);
    const n = (await this.keys(folder)).length;
    if (folder === '') {
      for (const k of await this.keys('')) await this.delete(k);
      await this.removeTree(path.join(this.root, META_DIR));
    } else {
      await this.removeTree(this.file(folder.slice(0, -1)));
      await this.removeTree(resolveUnder(path.join(this.root, META_DIR), folder.slice(0, -1)));
    }
    return n;
  }

  /**
   * Removes a folder even while something writes into it (a stage uploading as its personalization is deleted;
   * a recursive rm alone then fails with ENOTEMPTY): the folder leaves the key space at once by an atomic rename
   * into `.trash/`, and is removed from there. A put that lands after the rename recreates its path, as a put
   * after a delete does on S3.
   */
  private async removeTree(p: string): Promise<void> {
    const trash = path.join(this.root, TRASH_DIR, randomUUID());
    await mkdir(path.dirname(trash), { recursive: true });
    try {
      await rename(p, trash);
    } catch (err) {
      if (isMissing(err)) return;
      throw this.wrap(err, path.relative(this.root, p));
    }
    // writes already in flight may still land inside the moved folder: rm retries until they are done
    await rm(trash, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    for (const key of await this.keys(normalizePrefix(prefix))) {
      const info = await this.head(key);
      if (info) out.push(info);
    }
    return out;
  }

  async presignGet(key: string): Promise<string | null> {
    validateKey(key);
    return null;
  }

  async presignPut(key: string): Promise<string | null> {
    validateKey(key);
    return null;
  }

  async downloadPrefix(prefix: string, dir: string): Promise<void> {
    const folder = normalizePrefix(prefix);
    for (const key of await this.keys(folder)) {
      const target = resolveUnder(path.resolve(dir), key.slice(folder.length));
      const src = this.file(key);
      if (await sameContent(src, target)) continue;
      await writeFileAtomic(target, createReadStream(src));
    }
  }

  async uploadDir(dir: string, prefix: string): Promise<BlobInfo[]> {
    const folder = normalizePrefix(prefix);
    const out: BlobInfo[] = [];
    for (const rel of await walkFiles(dir)) {
      const key = validateKey(folder + rel);
      out.push(await this.put(key, createReadStream(path.join(dir, ...rel.split('/'))), { contentType: contentTypeFor(rel) }));
    }
    return out;
  }

  /** Keys of the regular files under a normalized folder prefix, skipping dot entries (ours, never keys). */
  private async keys(folder: string): Promise<string[]> {
    const base = folder === '' ? this.root : this.file(folder.slice(0, -1));
    let rels: string[];
    try {
      rels = await walkFiles(base);
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    }
    return rels.filter((r) => !r.split('/').some((s) => s.startsWith('.'))).map((r) => folder + r);
  }

  private wrap(err: unknown, key: string): unknown {
    if (err instanceof StorageError) return err;
    if (isMissing(err) || (err as NodeJS.ErrnoException)?.code === 'EISDIR') {
      return new StorageError('NOT_FOUND', `no object ${key} in ${this.url}`, { cause: err });
    }
    if ((err as NodeJS.ErrnoException)?.code === 'EACCES') {
      return new StorageError('ACCESS_DENIED', `permission denied on ${key} in ${this.url}`, { cause: err });
    }
    return new StorageError('UNAVAILABLE', `local storage ${this.url} failed on ${key}: ${String(err)}`, { cause: err });
  }
}

/** True when `target` exists with the same size and sha256 as `src` (a warm cache). */
async function sameContent(src: string, target: string): Promise<boolean> {
  try {
    const [a, b] = await Promise.all([stat(src), stat(target)]);
    if (a.size !== b.size) return false;
    return (await sha256File(src)) === (await sha256File(target));
  } catch {
    return false;
  }
}
