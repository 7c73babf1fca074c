/**
 * The evaluation's outputs: results.json (the tables, every seed's value, the runs), results.md (a table per
 * category like the paper's Table 1, mean ± spread over seeds) and report.html (the tables, the methods, and a
 * grid of samples per category, scene and method; one self-contained file, as the personalization report).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encodePng, imageGrid } from '@dynasyn/imaging';
import { esc, fmt, imageDataUrl, REPORT_CSS, table } from '../output/html.js';
import { writeJsonAtomic, writeTextAtomic } from '../output/json-file.js';
import type { CategoryTable, Cell, PairedCell, PairedTable, RunRecord } from './aggregate.js';
import type { Category, Protocol } from './protocol.js';
import type { MetricInfo } from './scorers.js';

export interface EvaluationResults {
  version: 1;
  protocol: { name: string; file?: string; backbone: string; clip: string; preset: string };
  methods: { id: string; label: string; summary: string }[];
  seeds: number[];
  scenes: string[];
  metrics: MetricInfo[];
  tables: CategoryTable[];
  /** The first method minus each other, paired by scene and seed (absent with one method). */
  paired?: PairedTable[];
  runs: { runId: string; dir: string; seconds: number }[];
  /** Every (scene, method, seed) of the selection is in the tables. */
  complete: boolean;
  /** Sum of the runs' own times (personalize + scoring), seconds. */
  runSeconds: number;
}

export interface ResultsContext {
  protocol: Protocol;
  /** The rows: a method or a protocol's named variant of one. */
  methods: readonly { id: string; label: string; summary: string }[];
  seeds: number[];
  scenes: string[];
  metrics: readonly MetricInfo[];
  records: readonly RunRecord[];
  complete: boolean;
  /** Write report.html too (at the end: it inlines every sample grid). */
  html: boolean;
}

const CATEGORY_TITLE: Record<Category, string> = { plain: 'Plain', action: 'Action', interaction: 'Interaction' };

/** `+0.012 ± 0.004 · 14/18`: the mean difference, its spread over seeds, and the runs the reference won of those compared. */
export function formatPairedCell(c: PairedCell | undefined): string {
  if (!c || c.mean === null) return '–';
  const signed = `${c.mean >= 0 ? '+' : '−'}${fmt(Math.abs(c.mean), 3)}`;
  return `${c.std === null ? signed : `${signed} ± ${fmt(c.std, 2)}`} · ${c.wins}/${c.wins + c.losses + c.ties}`;
}

const pairedIntro = (r: EvaluationResults, t: PairedTable) =>
  `${labelOf(r, t.reference)} minus each method on the same scenes, seeds and sample seeds: mean difference ± its spread over seeds · runs (scene, seed) where ${labelOf(r, t.reference)} scored higher, of those compared.`;
const labelOf = (r: EvaluationResults, id: string) => r.methods.find((m) => m.id === id)?.label ?? id;

/** `0.3123 ± 0.0041` (no spread with one seed; a dash without a value). */
export function formatCell(c: Cell | undefined): string {
  if (!c || c.mean === null) return '–';
  return c.std === null ? fmt(c.mean, 3) : `${fmt(c.mean, 3)} ± ${fmt(c.std, 2)}`;
}

export function resultsMarkdown(r: EvaluationResults): string {
  const lines = [
    `# Evaluation: ${r.protocol.name}`,
    '',
    `Seeds ${r.seeds.join(', ')}; scenes ${r.scenes.join(', ')}; mean ± sample standard deviation over seeds${r.complete ? '' : ' (incomplete: runs still missing)'}.`,
    '',
  ];
  for (const t of r.tables) {
    lines.push(`## ${CATEGORY_TITLE[t.category]}`, '');
    lines.push(`| Method | ${r.metrics.map((m) => m.label).join(' | ')} | samples |`);
    lines.push(`|---|${r.metrics.map(() => '---:').join('|')}|---:|`);
    for (const row of t.rows) lines.push(`| ${row.label} | ${r.metrics.map((m) => formatCell(row.cells[m.key])).join(' | ')} | ${t.samples[row.method]} |`);
    lines.push('');
  }
  if (r.paired?.length) {
    lines.push(`## Paired differences: ${labelOf(r, r.paired[0]!.reference)} minus each method`, '', pairedIntro(r, r.paired[0]!), '');
    for (const t of r.paired) {
      lines.push(`### ${CATEGORY_TITLE[t.category]}`, '');
      lines.push(`| Method | ${r.metrics.map((m) => `Δ ${m.label}`).join(' | ')} |`);
      lines.push(`|---|${r.metrics.map(() => '---:').join('|')}|`);
      for (const row of t.rows) lines.push(`| ${row.label} | ${r.metrics.map((m) => formatPairedCell(row.cells[m.key])).join(' | ')} |`);
      lines.push('');
    }
  }
  lines.push('Metrics:', '', ...r.metrics.map((m) => `- ${m.label}: ${m.about}`), '');
  return lines.join('\n');
}

/** The grid of `files` (relative to `out`); null when there are none, or when they are not on this machine (a ledger brought from elsewhere). */
async function sampleGrid(out: string, files: readonly string[]): Promise<string | null> {
  if (!files.length || files.some((f) => !existsSync(join(out, f)))) return null;
  const images = [];
  for (const f of files) images.push(await decode(readFileSync(join(out, f))));
  return imageDataUrl(await encodePng(imageGrid(images, Math.min(files.length, 8))));
}

async function reportHtml(out: string, r: EvaluationResults, records: readonly RunRecord[]): Promise<string> {
  const parts: string[] = [];
  parts.push(`<h1>Evaluation: ${esc(r.protocol.name)}</h1>`);
  parts.push(
    `<p class="muted">backbone ${esc(r.protocol.backbone)} · CLIP ${esc(r.protocol.clip)} · preset ${esc(r.protocol.preset)} · seeds ${esc(r.seeds.join(', '))} · scenes ${esc(r.scenes.join(', '))} · ${r.runs.length} runs, ${(r.runSeconds / 60).toFixed(1)} min of run time${r.complete ? '' : ' · <b>incomplete</b>'}</p>`,
  );
  for (const t of r.tables) {
    parts.push(`<h2>${CATEGORY_TITLE[t.category]}</h2>`);
    parts.push(
      table(
        ['Method', ...r.metrics.map((m) => esc(m.label)), 'samples'],
        t.rows.map((row) => [esc(row.label), ...r.metrics.map((m) => esc(formatCell(row.cells[m.key]))), String(t.samples[row.method])]),
      ),
    );
  }
  if (r.paired?.length) {
    parts.push(
      `<h2>Paired differences: ${esc(labelOf(r, r.paired[0]!.reference))} minus each method</h2><p class="muted">${esc(pairedIntro(r, r.paired[0]!))}</p>`,
    );
    for (const t of r.paired) {
      parts.push(`<h3>${CATEGORY_TITLE[t.category]}</h3>`);
      parts.push(
        table(
          ['Method', ...r.metrics.map((m) => `Δ ${esc(m.label)}`)],
          t.rows.map((row) => [esc(row.label), ...r.metrics.map((m) => esc(formatPairedCell(row.cells[m.key])))]),
        ),
      );
    }
  }
  parts.push('<h2>Methods</h2>');
  parts.push(
    table(
      ['id', 'label', 'what it trains'],
      r.methods.map((m) => [esc(m.id), esc(m.label), esc(m.summary)]),
    ),
  );
  parts.push('<h2>Metrics</h2><ul>' + r.metrics.map((m) => `<li><b>${esc(m.label)}</b>: ${esc(m.about)}</li>`).join('') + '</ul>');
  parts.push(`<h2>Samples</h2><p class="muted">First seed (${r.seeds[0]}): one grid per category, scene and method, prompts in protocol order.</p>`);
  for (const t of r.tables) {
    parts.push(`<h3>${CATEGORY_TITLE[t.category]}</h3>`);
    for (const scene of r.scenes) {
      for (const m of r.methods) {
        const run = records.find((x) => x.scene === scene && x.method === m.id && x.seed === r.seeds[0]);
        const samples = run?.samples.filter((s) => s.category === t.category) ?? [];
        const url = await sampleGrid(
          out,
          samples.map((s) => s.file),
        );
        const prompts = [...new Set(samples.map((s) => s.prompt))];
        parts.push(
          `<figure class="wide" style="width:100%"><figcaption><b>${esc(scene)} · ${esc(m.label)}</b> · ${esc(prompts.join(' | '))}</figcaption>${
            url
              ? `<img src="${url}" alt="${esc(`${scene} ${m.label} ${t.category}`)}" style="max-width:${Math.min(8, samples.length) * 140}px">`
              : `<div class="missing">${samples.length ? 'samples not in this output directory' : 'no samples'}</div>`
          }</figure>`,
        );
      }
    }
  }
  const csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${csp}"><title>Evaluation ${esc(r.protocol.name)}</title><style>${REPORT_CSS}</style></head><body>${parts.join('\n')}</body></html>\n`;
}

/** Writes results.json and results.md (and report.html when ctx.html); returns the results. */
export async function writeResults(
  out: string,
  ctx: ResultsContext,
  tables: (records: readonly RunRecord[]) => CategoryTable[],
  paired?: (records: readonly RunRecord[]) => PairedTable[],
): Promise<EvaluationResults> {
  const p = ctx.protocol;
  const results: EvaluationResults = {
    version: 1,
    protocol: { name: p.name, ...(p.file ? { file: p.file } : {}), backbone: p.backbone, clip: p.clip, preset: p.preset },
    methods: ctx.methods.map((m) => ({ ...m })),
    seeds: ctx.seeds,
    scenes: ctx.scenes,
    metrics: [...ctx.metrics],
    tables: tables(ctx.records),
    ...(paired && ctx.methods.length > 1 ? { paired: paired(ctx.records) } : {}),
    runs: ctx.records.map((r) => ({ runId: r.runId, dir: r.dir, seconds: r.seconds })),
    complete: ctx.complete,
    runSeconds: ctx.records.reduce((a, r) => a + r.seconds, 0),
  };
  // atomic: shards of one evaluation (`dynasyn evaluate --jobs`) rewrite these files while others read them
  writeJsonAtomic(join(out, 'results.json'), results);
  writeTextAtomic(join(out, 'results.md'), resultsMarkdown(results));
  if (ctx.html) writeTextAtomic(join(out, 'report.html'), await reportHtml(out, results, ctx.records));
  return results;
}
