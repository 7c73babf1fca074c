/** The documented HTTP contract of issue 5, spoken with fetch + FormData and nothing from the service's code. */
import fs from 'node:fs';
import zlib from 'node:zlib';

export interface Upload {
  image: Buffer;
  masks: Buffer[];
  classes?: string;
  options?: unknown;
  webhookUrl?: string;
}

export interface Personalization {
  id: string;
  status: 'queued' | 'augmenting' | 'training' | 'sampling' | 'succeeded' | 'failed' | 'canceled';
  progress: { stage: string; step: number; total: number }[];
  [k: string]: unknown;
}

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly apiKey: string,
  ) {}

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    init: { body?: string | FormData; json?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiAnswer<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const r = await fetch(new URL(path, this.baseUrl), { method, headers, body });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed as T, headers: r.headers };
  }

  createPersonalization(u: Upload, idempotencyKey?: string) {
    const form = new FormData();
    form.append('image', new Blob([u.image], { type: 'image/png' }), 'image.png');
    u.masks.forEach((m, i) => form.append('mask', new Blob([m], { type: 'image/png' }), `mask${i}.png`));
    if (u.classes !== undefined) form.append('classes', u.classes);
    if (u.options !== undefined) form.append('options', JSON.stringify(u.options));
    if (u.webhookUrl !== undefined) form.append('webhook_url', u.webhookUrl);
    return this.request<{ id: string; status: string; links: Record<string, unknown>; code?: string; message?: string }>('POST', '/v1/personalizations', {
      body: form,
      headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    });
  }

  get(id: string) {
    return this.request<Personalization>('GET', `/v1/personalizations/${id}`);
  }
  cancel(id: string) {
    return this.request('POST', `/v1/personalizations/${id}/cancel`);
  }
  requestSamples(id: string, prompts: string[], seed?: number) {
    return this.request('POST', `/v1/personalizations/${id}/samples`, { json: seed === undefined ? { prompts } : { prompts, seed } });
  }
  listSamples(id: string) {
    return this.request<{ items: { prompt: string; seed: number; status: string; url: string | null }[] }>(
      'GET',
      `/v1/samples?personalization=${encodeURIComponent(id)}`,
    );
  }
  webhookSecret() {
    return this.request<{ secret: string }>('GET', '/v1/webhooks/secret');
  }

  /** GETs a sample url: presigned (absolute, no auth needed) or an API path (with the key). */
  async fetchUrl(url: string): Promise<{ status: number; type: string | null; bytes: Buffer }> {
    const abs = new URL(url, this.baseUrl);
    const sameOrigin = abs.origin === new URL(this.baseUrl).origin;
    const r = await fetch(abs, { headers: sameOrigin ? { authorization: `Bearer ${this.apiKey}` } : {} });
    return { status: r.status, type: r.headers.get('content-type'), bytes: Buffer.from(await r.arrayBuffer()) };
  }
}

export const readFile = (p: string) => fs.readFileSync(p);

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A valid-looking PNG whose header claims `width` x `height` (a decompression bomb's header; tiny body). */
export function pngWithHugeHeader(width = 100_000, height = 100_000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

export const isPng = (b: Buffer) => b.subarray(0, 8).equals(PNG_SIGNATURE);
