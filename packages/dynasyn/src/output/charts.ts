/** Inline SVG line charts of per-step metrics (no script, no external resource: the report opens offline). */
import { esc, fmt } from './html.js';

export interface ChartSeries {
  /** Points in order; non-finite y values break the line. */
  points: { x: number; y: number }[];
  color: string;
  label: string;
}

export interface LineChartOptions {
  /** `data-chart` attribute: lets tests and readers find a chart by its metric. */
  id: string;
  title: string;
  series: ChartSeries[];
  /** x positions of vertical markers (phase boundaries) with their labels. */
  markers?: { x: number; label: string }[];
  width?: number;
  height?: number;
}

const M = { left: 52, right: 12, top: 32, bottom: 28 };

/** An SVG line chart inside a <figure class="chart" data-chart="id">. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 380,
    H = o.height ?? 200;
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && Number.isFinite(p.x));
  let body: string;
  if (all.length === 0) {
    body = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#5b6678" font-size="12">no data</text>`;
  } else {
    let xMin = Math.min(...all.map((p) => p.x)),
      xMax = Math.max(...all.map((p) => p.x));
    let yMin = Math.min(...all.map((p) => p.y)),
      yMax = Math.max(...all.map((p) => p.y));
    if (xMax === xMin) {
      xMin -= 0.5;
      xMax += 0.5;
    }
    if (yMax === yMin) {
      const pad = Math.abs(yMin) * 0.1 || 1;
      yMin -= pad;
      yMax += pad;
    }
    const sx = (x: number) => M.left + ((x - xMin) / (xMax - xMin)) * (W - M.left - M.right);
    const sy = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
    const grid = [yMin, (yMin + yMax) / 2, yMax]
      .map(
        (y) =>
          `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#e6e9ef"/>` +
          `<text x="${M.left - 4}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#5b6678">${esc(fmt(y, 3))}</text>`,
      )
      .join('');
    const xLabels =
      `<text x="${M.left}" y="${H - 8}" font-size="10" fill="#5b6678">${esc(fmt(xMin, 4))}</text>` +
      `<text x="${W - M.right}" y="${H - 8}" text-anchor="end" font-size="10" fill="#5b6678">${esc(fmt(xMax, 4))}</text>` +
      `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle" font-size="10" fill="#5b6678">step</text>`;
    const markers = (o.markers ?? [])
      .map(
        (m) =>
          `<line class="marker" x1="${sx(m.x).toFixed(1)}" x2="${sx(m.x).toFixed(1)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#888" stroke-dasharray="4 3"/>` +
          `<text x="${(sx(m.x) + 3).toFixed(1)}" y="${M.top + 10}" font-size="10" fill="#555">${esc(m.label)}</text>`,
      )
      .join('');
    const lines = o.series
      .map((s) =>
        segments(s.points)
          .map((seg) =>
            seg.length === 1
              ? `<circle cx="${sx(seg[0]!.x).toFixed(1)}" cy="${sy(seg[0]!.y).toFixed(1)}" r="2" fill="${esc(s.color)}"/>`
              : `<polyline fill="none" stroke="${esc(s.color)}" stroke-width="1.5" points="${seg.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`,
          )
          .join(''),
      )
      .join('');
    const legend = o.series
      .map(
        (s, i) =>
          `<rect x="${W - M.right - 110 + i * 56}" y="20" width="10" height="3" fill="${esc(s.color)}"/><text x="${W - M.right - 96 + i * 56}" y="25" font-size="10" fill="#333">${esc(s.label)}</text>`,
      )
      .join('');
    body = grid + xLabels + markers + lines + legend;
  }
  return (
    `<figure class="chart" data-chart="${esc(o.id)}"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">` +
    `<text x="${M.left}" y="14" font-size="12" font-weight="600" fill="#1d2430">${esc(o.title)}</text>${body}</svg></figure>`
  );
}

/** Runs of consecutive finite points. */
function segments(points: { x: number; y: number }[]): { x: number; y: number }[][] {
  const out: { x: number; y: number }[][] = [];
  let run: { x: number; y: number }[] = [];
  for (const p of points) {
    if (Number.isFinite(p.y) && Number.isFinite(p.x)) run.push(p);
    else if (run.length) {
      out.push(run);
      run = [];
    }
  }
  if (run.length) out.push(run);
  return out;
}
