/** MIME types of the files the project stores, from their extension (application/octet-stream otherwise). */
const BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  json: 'application/json',
  html: 'text/html; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  safetensors: 'application/octet-stream',
};

export function contentTypeFor(keyOrPath: string): string {
  const base = keyOrPath.slice(keyOrPath.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return (dot > 0 && BY_EXTENSION[base.slice(dot + 1).toLowerCase()]) || 'application/octet-stream';
}
