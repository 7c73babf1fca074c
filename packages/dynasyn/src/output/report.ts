/**
 * report.html: one self-contained page (images as data: URLs, inline CSS and SVG, no script) that shows
 * what a personalization did, from the files of its output directory. It renders partial runs too: a
 * section whose files are not there yet says so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeTextAtomic } from './json-file.js';
import { isAbsolute, relative, resolve } from 'node:path';
import { decodeMask, encodePng, readImage } from '@dynasyn/imaging';
import type { Mask, RgbImage } from '../types.js';
import { lineChart } from './charts.js';
import { REPORT_CSS, esc, figure, fmt, fmtMs, imageDataUrl, table } from './html.js';
import { readAugmentedIndex, readInputs, readSamples, type AugmentedEntry, type SampleEntry } from './images.js';
import { artifactPath, attentionHeatmapPath } from './layout.js';
import { readManifest, type Manifest } from './manifest.js';
import { LOSS_TERMS, readMetrics, type CategoryScores, type MetricsFile, type StepMetrics } from './metrics.js';

export interface RenderReportOptions {
  /** Output file; default `<dir>/report.html`. */
  out?: string;
}

/** Subject colours (mask overlays, legends): distinct on photos and for common colour blindness. */
const SUBJECT_COLORS: [number, number, number][] = [
  [230, 97, 1],
  [94, 60, 153],
  [0, 158, 115],
  [204, 121, 167],
  [86, 180, 233],
  [240, 228, 66],
];
const cssColor = (i: number) => `rgb(${SUBJECT_COLORS[i % SUBJECT_COLORS.length]!.join(',')})`;
const TERM_COLORS = { 1: '#2a6fdb', 2: '#d9480f' } as const;
const TERM_TITLES: Record<string, string> = {
  md: 'L_MD (masked diffusion)',
  m2a: 'L_M2A (mask-to-attention)',
  ica: 'L_ICA (intra-class attention)',
  aug: 'L_AUG (augmented attention)',
  total: 'total (weighted sum)',
  gradNorm: 'gradient norm (before clipping)',
  lr: 'learning rate',
};

/** Renders `<dir>/report.html` (or `options.out`) and returns its path. */
export async function renderReport(dir: string, options: RenderReportOptions = {}): Promise<string> {
  const html = await buildReportHtml(dir);
  const out = options.out ?? artifactPath(dir, 'report');
  writeTextAtomic(out, html);
  return out;
}

/** The report's HTML, from the files of `dir` (manifest.json is required; everything else is optional). */
export async function buildReportHtml(dir: string): Promise<string> {
  const manifest = readManifest(dir);
  const metrics = existsSync(artifactPath(dir, 'metrics')) ? readMetrics(dir) : undefined;
  const samples = readSamples(dir);
  const augmented = readAugmentedIndex(dir);
  const sections = [
    runFacts(manifest, metrics),
    await referenceSection(dir, manifest),
    await augmentedSection(dir, augmented),
    attentionSection(dir, manifest, metrics),
    lossSection(metrics),
    metricsSection(metrics),
    samplesSection(dir, samples, metrics),
  ];
  const banner = manifest.backbone.randomWeights
    ? `<div class="banner" id="random-weights"><b>This backbone has random weights</b> (the tiny test bundle). Its images are noise by nature: ` +
      `no picture here is expected to look like anything. The meaningful signal is in the loss curves and in the attention maps ` +
      `(how each placeholder's attention moves toward its mask).</div>`
    : '';
  const title = `DynASyn report: ${manifest.tokens.map((t, i) => `${t} (${manifest.classWords[i]})`).join(', ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${REPORT_CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<div class="muted">Created ${esc(manifest.createdAt)} · preset <code>${esc(manifest.preset)}</code> · seed ${esc(manifest.seed)}</div>
${banner}
${sections.join('\n')}
</body></html>
`;
}

/** Absolute path of `rel` if it stays inside `dir` (index files are data: a crafted entry must not inline other files). */
function inside(dir: string, rel: string): string | null {
  const full = resolve(dir, rel);
  const r = relative(resolve(dir), full);
  return r && !r.startsWith('..') && !isAbsolute(r) ? full : null;
}

function fileDataUrl(dir: string, rel: string): string | null {
  const file = inside(dir, rel);
  if (!file || !existsSync(file)) return null;
  return imageDataUrl(readFileSync(file));
}

/** The image with each mask tinted in its subject's colour. */
async function overlayUrl(image: RgbImage, masks: { mask: Mask; subject: number }[]): Promise<string | null> {
  const out = new Uint8Array(image.data);
  const n = image.width * image.height;
  for (const { mask, subject } of masks) {
    if (mask.width !== image.width || mask.height !== image.height) continue;
    const c = SUBJECT_COLORS[subject % SUBJECT_COLORS.length]!;
    for (let p = 0; p < n; p++) {
      if (!mask.data[p]) continue;
      for (let k = 0; k < 3; k++) out[p * 3 + k] = Math.round(0.5 * out[p * 3 + k]! + 0.5 * c[k]!);
    }
  }
  return imageDataUrl(await encodePng({ width: image.width, height: image.height, data: out }));
}

function runFacts(m: Manifest, metrics: MetricsFile | undefined): string {
  const steps = metrics?.steps ?? [];
  const phaseSteps = (p: 1 | 2) => steps.filter((s) => s.phase === p).length;
  const trainMs = steps.reduce((a, s) => a + (Number.isFinite(s.ms) ? s.ms : 0), 0);
  const rows: [string, string][] = [
    ['Backbone', `<code>${esc(m.backbone.path)}</code>${m.backbone.randomWeights ? ' <b>(random weights)</b>' : ''}`],
    [
      'Backbone fingerprint',
      `model_index sha256 <code>${esc(m.backbone.fingerprint.modelIndexSha256.slice(0, 16))}…</code>, ${Object.keys(m.backbone.fingerprint.fileSizes).length} files, ` +
        `${esc(fmt(Object.values(m.backbone.fingerprint.fileSizes).reduce((a, b) => a + b, 0) / 2 ** 20, 4))} MiB`,
    ],
    [
      'Subjects',
      m.tokens
        .map(
          (t, i) =>
            `<span style="color:${cssColor(i)}">■</span> <code>${esc(t)}</code> = ${esc(m.classWords[i])}` +
            (m.nounPhrases[i] && m.nounPhrases[i] !== m.classWords[i] ? ` (“${esc(m.nounPhrases[i])}”)` : ''),
        )
        .join('<br>'),
    ],
    ['Preset / seed', `${esc(m.preset)} / ${esc(m.seed)}`],
    ['Training steps recorded', `phase 1: ${phaseSteps(1)}, phase 2: ${phaseSteps(2)} (${fmtMs(trainMs)} in steps)`],
    ['Phases completed', esc(m.phasesCompleted.join(', ') || 'none')],
    [
      'Versions',
      esc(
        Object.entries(m.packages)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ),
    ],
  ];
  const timings =
    metrics && Object.keys(metrics.timings).length
      ? `<h3>Time per stage</h3>${table(
          ['stage', 'time'],
          Object.entries(metrics.timings).map(([k, v]) => [esc(k), fmtMs(v)]),
          'timings',
        )}`
      : '';
  return `<section id="facts"><h2>Run</h2>${table(
    ['', ''],
    rows.map(([k, v]) => [esc(k), v]),
    'facts',
  )}${timings}</section>`;
}

async function referenceSection(dir: string, m: Manifest): Promise<string> {
  let inputs: Awaited<ReturnType<typeof readInputs>>;
  try {
    inputs = await readInputs(dir);
  } catch {
    return `<section id="reference"><h2>Reference and masks</h2><p class="muted">The reference image was not saved in this directory.</p></section>`;
  }
  const figs = [figure(fileDataUrl(dir, 'input/reference.png'), 'reference image', '<b>reference</b>', 'wide')];
  for (const [i, mask] of inputs.masks.entries()) {
    const caption =
      `<b style="color:${cssColor(i)}">${esc(m.tokens[i] ?? `subject ${i}`)}</b> · ${esc(m.classWords[i] ?? '')}` +
      (m.nounPhrases[i] && m.nounPhrases[i] !== m.classWords[i] ? `<br>${esc(m.nounPhrases[i])}` : '');
    figs.push(figure(await overlayUrl(inputs.image, [{ mask, subject: i }]), `mask of ${m.tokens[i] ?? i}`, caption, 'wide'));
  }
  return `<section id="reference"><h2>Reference and masks</h2><div class="grid">${figs.join('')}</div></section>`;
}

async function augmentedSection(dir: string, entries: AugmentedEntry[]): Promise<string> {
  if (entries.length === 0)
    return `<section id="augmented"><h2>Augmented set</h2><p class="muted">No augmented images (augmentation off or not run yet).</p></section>`;
  const items: string[] = [];
  for (const [k, e] of entries.entries()) {
    const url = fileDataUrl(dir, e.file);
    let overlay: string | null = null;
    const imgFile = inside(dir, e.file);
    if (url && imgFile && e.masks.length) {
      const image = await readImage(imgFile);
      const masks: { mask: Mask; subject: number }[] = [];
      for (const [j, rel] of e.masks.entries()) {
        const f = inside(dir, rel);
        if (f && existsSync(f)) masks.push({ mask: await decodeMask(readFileSync(f)), subject: e.subjects[j] ?? j });
      }
      overlay = await overlayUrl(image, masks);
    }
    const caption = `<b>${esc(e.prompt)}</b><br>${esc(e.category)}${e.nounPrompt ? ` · drawn as “${esc(e.nounPrompt)}”` : ''}`;
    // the composition before GSA beside its result, when the directory kept it: what the SDEdit pass changed
    const before = e.composedFile !== undefined ? fileDataUrl(dir, e.composedFile) : null;
    items.push(
      `<div class="pair augmented">${before ? figure(before, `composed image ${k}`, 'composed (before GSA)') : ''}` +
        `${figure(url, `augmented image ${k}`, caption)}${overlay ? figure(overlay, `pseudo masks ${k}`, 'pseudo masks') : ''}</div>`,
    );
  }
  return `<section id="augmented"><h2>Augmented set (${entries.length})</h2><div class="grid">${items.join('')}</div></section>`;
}

function attentionSection(dir: string, m: Manifest, metrics: MetricsFile | undefined): string {
  const pairs = m.tokens.map((t, i) => {
    const url = (when: 'before' | 'after') => {
      const f = attentionHeatmapPath(dir, when, i);
      return existsSync(f) ? imageDataUrl(readFileSync(f)) : null;
    };
    const num = (when: 'before' | 'after') => {
      const r = metrics?.attention[when]?.find((x) => x.token === t);
      return r ? `<br>mass in mask ${fmt(r.massInMask, 3)} · IoU ${fmt(r.iou, 3)}` : '';
    };
    return (
      `<div class="pair attention" data-token="${esc(t)}">` +
      figure(url('before'), `${t} before training`, `<b>${esc(t)}</b> before${num('before')}`) +
      figure(url('after'), `${t} after training`, `<b>${esc(t)}</b> after${num('after')}`) +
      '</div>'
    );
  });
  const before = metrics?.attention.before ?? [],
    after = metrics?.attention.after ?? [];
  const rows = m.tokens.map((t) => {
    const b = before.find((x) => x.token === t),
      a = after.find((x) => x.token === t);
    return [`<code>${esc(t)}</code>`, fmt(b?.maskShare ?? a?.maskShare, 3), fmt(b?.massInMask, 3), fmt(a?.massInMask, 3), fmt(b?.iou, 3), fmt(a?.iou, 3)];
  });
  const tbl =
    before.length || after.length
      ? table(['placeholder', 'mask area share', 'mass in mask before', 'after', 'IoU before', 'after'], rows, 'attention-table')
      : '';
  return (
    `<section id="attention"><h2>Cross-attention of each placeholder, before and after training</h2>` +
    `<p class="muted">Mass in mask: the share of the placeholder's attention that falls inside its subject's mask (chance level is the mask's area share).</p>` +
    `<div class="grid">${pairs.join('')}</div>${tbl}</section>`
  );
}

/** x of each row: its index over both phases in order, so phase 2 continues where phase 1 ends. */
function series(steps: StepMetrics[], key: keyof StepMetrics): { phase: 1 | 2; points: { x: number; y: number }[] }[] {
  return ([1, 2] as const)
    .map((phase) => ({
      phase,
      points: steps.flatMap((s, x) => (s.phase === phase ? [{ x, y: Number(s[key]) }] : [])),
    }))
    .filter((s) => s.points.length > 0);
}

function lossSection(metrics: MetricsFile | undefined): string {
  const steps = metrics?.steps ?? [];
  if (steps.length === 0) return `<section id="losses"><h2>Loss curves</h2><p class="muted">No training steps recorded yet.</p></section>`;
  const boundary = steps.findIndex((s) => s.phase === 2);
  const markers = boundary > 0 ? [{ x: boundary - 0.5, label: 'phase 2' }] : [];
  const charts = [...LOSS_TERMS, 'gradNorm', 'lr'].map((key) =>
    lineChart({
      id: key,
      title: TERM_TITLES[key] ?? key,
      series: series(steps, key as keyof StepMetrics).map((s) => ({ points: s.points, color: TERM_COLORS[s.phase], label: `phase ${s.phase}` })),
      markers,
    }),
  );
  return `<section id="losses"><h2>Loss curves</h2><div class="grid">${charts.join('')}</div></section>`;
}

function metricsSection(metrics: MetricsFile | undefined): string {
  const steps = metrics?.steps ?? [];
  if (steps.length === 0) return '';
  const rows: string[][] = [];
  for (const phase of [1, 2] as const) {
    const ps = steps.filter((s) => s.phase === phase);
    if (!ps.length) continue;
    for (const key of [...LOSS_TERMS, 'gradNorm'] as const) {
      const v = ps.map((s) => s[key]).filter(Number.isFinite);
      const first = ps[0]![key],
        last = ps[ps.length - 1]![key];
      rows.push([`${phase}`, esc(key), fmt(first), fmt(last), v.length ? fmt(Math.min(...v)) : '–', fmt(v.reduce((a, b) => a + b, 0) / (v.length || NaN))]);
    }
    const ms = ps.map((s) => s.ms).filter(Number.isFinite);
    rows.push([
      `${phase}`,
      'ms / step',
      fmt(ps[0]!.ms),
      fmt(ps[ps.length - 1]!.ms),
      ms.length ? fmt(Math.min(...ms)) : '–',
      fmt(ms.reduce((a, b) => a + b, 0) / (ms.length || NaN)),
    ]);
  }
  return `<section id="metrics"><h2>Metrics</h2>${table(['phase', 'term', 'first', 'last', 'min', 'mean'], rows, 'metrics-table')}</section>`;
}

function samplesSection(dir: string, samples: SampleEntry[], metrics: MetricsFile | undefined): string {
  if (samples.length === 0) return `<section id="samples"><h2>Samples</h2><p class="muted">No samples yet.</p></section>`;
  const figs = samples.map((s, i) => {
    const m = s.metrics;
    const clip = m ? `<br>CLIP-T ${fmt(m.clipT, 3)} · CLIP-I ${fmt(m.clipI, 3)}` : '';
    const judge = m && 'identity' in m ? `<br>identity ${fmt(m.identity, 3)} · attributes ${fmt(m.attributes, 3)} · prompt ${fmt(m.prompt, 3)}` : '';
    const caption = `<b>${esc(s.prompt)}</b><br>${esc(s.category)} · seed ${esc(s.seed)} · ${esc(s.steps)} steps · ${esc(s.scheduler)} · guidance ${esc(s.guidance)}${clip}${judge}`;
    return figure(fileDataUrl(dir, s.file), `sample ${i}`, caption, 'sample');
  });
  const ev = metrics?.evaluation;
  // the judge's columns (JUDGE_METRICS' labels) only when a judge scored the samples
  const judged = ev?.judge !== undefined;
  const row = (name: string, v: CategoryScores) => [
    name,
    String(v.count),
    fmt(v.clipT, 3),
    fmt(v.clipI, 3),
    ...(judged ? [fmt(v.identity, 3), fmt(v.attributes, 3), fmt(v.prompt, 3)] : []),
  ];
  const identities = ev?.judge?.identities
    ? `<p class="muted">The reference as the judge (${esc(ev.judge.model)}) reads it inside the masks, what identity acc. and attributes kept compare with: ${ev.judge.identities
        .map((s, i) => `subject ${i}: ${esc(s.colour)} ${esc(s.pattern)} ${esc(s.class)}, accessory ${esc(s.accessory)}`)
        .join('; ')}.</p>`
    : '';
  const evTable = ev
    ? `<h3>${judged ? 'CLIP and judge scores' : 'CLIP scores'} (${esc(ev.model)})</h3>` +
      table(
        ['category', 'samples', 'CLIP-T', 'CLIP-I', ...(judged ? ['identity acc.', 'attributes kept', 'prompt acc.'] : [])],
        [...Object.entries(ev.byCategory).map(([c, v]) => row(esc(c), v)), row('<b>all</b>', ev.overall)],
        'evaluation-table',
      ) +
      identities
    : '<p class="muted">No CLIP model configured: no CLIP-T / CLIP-I scores.</p>';
  return `<section id="samples"><h2>Samples</h2><div class="grid">${figs.join('')}</div>${evTable}</section>`;
}
