/** HTML building blocks of the report: escaping (prompts and class words are user input) and data URLs. */
import { sniffImageType } from '@dynasyn/imaging';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in element content and quoted attribute values. */
export const esc = (text: unknown): string => String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** A data: URL of image bytes, or null when the bytes are not a PNG/JPEG/WebP (never inline anything else). */
export function imageDataUrl(bytes: Uint8Array): string | null {
  const type = sniffImageType(bytes);
  if (!type) return null;
  return `data:image/${type};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** A number for tables: 4 significant digits, exponent for very small/large, a dash for missing. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}

/** Milliseconds as a duration (`850 ms`, `12.3 s`, `4 min 05 s`). */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** An <img> figure with a caption of HTML (already escaped by the caller). */
export function figure(url: string | null, alt: string, captionHtml: string, cls = ''): string {
  const img = url ? `<img src="${url}" alt="${esc(alt)}">` : `<div class="missing">${esc(alt)}: not produced</div>`;
  return `<figure class="${cls}">${img}<figcaption>${captionHtml}</figcaption></figure>`;
}

/** A table from a header row and body rows of HTML cells (already escaped). */
export function table(head: string[], rows: string[][], cls = ''): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

export const REPORT_CSS = `
:root { --fg: #1d2430; --muted: #5b6678; --line: #d9dee7; --accent: #2a6fdb; --warn-bg: #fff4d6; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); }
.banner { background: var(--warn-bg); color: var(--warn); border: 2px solid #e0b84a; border-radius: 6px; padding: 12px 16px; margin: 16px 0; font-size: 15px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 220px; } figure img { width: 100%; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 4px; display: block; }
figure.wide { width: 300px; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; word-wrap: break-word; }
figcaption b { color: var(--fg); }
.pair { display: flex; gap: 8px; align-items: flex-start; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.pair figure { width: 180px; }
.missing { width: 100%; aspect-ratio: 1; display: flex; align-items: center; justify-content: center; background: #f3f4f7; color: var(--muted); font-size: 12px; border-radius: 4px; text-align: center; padding: 8px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; } th { background: #f3f5f9; }
.chart { width: 380px; } .chart svg { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
code { background: #f3f5f9; padding: 0 3px; border-radius: 3px; }
`;
