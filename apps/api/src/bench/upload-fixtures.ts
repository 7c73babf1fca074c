/** Upload requests for tests and the bench: multipart bodies, small PNG images and masks, a crafted PNG header. */
import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { encodePng, type RgbImage } from '@dynasyn/imaging';

export type Part = { name: string; value: string } | { name: string; filename: string; contentType: string; data: Uint8Array };

/** A multipart/form-data body for `inject`. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----dynasyn${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('data' in p) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.contentType}\r\n\r\n`));
      chunks.push(Buffer.from(p.data), Buffer.from('\r\n'));
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** A w x h photo-ish RGB image (a gradient) and a mask with a filled rectangle, as PNG bytes. */
export async function pngImage(w: number, h: number): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[3 * i] = (i % w) * 4;
    data[3 * i + 1] = Math.floor(i / w) * 4;
    data[3 * i + 2] = 128;
  }
  return encodePng({ width: w, height: h, data } as RgbImage);
}

export async function pngMask(w: number, h: number, box = { x: 0, y: 0, width: Math.ceil(w / 2), height: Math.ceil(h / 2) }): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let y = box.y; y < box.y + box.height; y++) for (let x = box.x; x < box.x + box.width; x++) data.fill(255, 3 * (y * w + x), 3 * (y * w + x) + 3);
  return encodePng({ width: w, height: h, data } as RgbImage);
}

/** A PNG whose header claims width x height but carries no pixels: decoders must refuse it from the header. */
export function pngHeaderOnly(width: number, height: number): Uint8Array {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const file = (name: string, data: Uint8Array, contentType = 'image/png'): Part => ({ name, filename: `${name}.png`, contentType, data });
